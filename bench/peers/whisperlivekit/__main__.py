"""`python -m bench.peers.whisperlivekit install | smoke [WAV]`."""

from __future__ import annotations

import sys

from bench.peers.cli import run_cli

from .install import VENV, install
from .smoke import JFK, print_smoke, smoke


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        argv,
        prog="python -m bench.peers.whisperlivekit",
        description=__doc__,
        venv=VENV,
        install=install,
        smoke=smoke,
        print_smoke=print_smoke,
        default_wav=JFK,
    )


if __name__ == "__main__":
    sys.exit(main())
