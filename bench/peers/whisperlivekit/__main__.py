"""`python -m bench.peers.whisperlivekit install | smoke [WAV]`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.server import ServerError

from .install import VENV, install
from .smoke import JFK, print_smoke, smoke


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.whisperlivekit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("install", help=f"create the peer's venv at {VENV}")
    setup.add_argument("--venv", type=Path, default=VENV, help=f"where (default {VENV})")
    setup.add_argument("--force", action="store_true", help="recreate it even if it works")
    check = commands.add_parser("smoke", help="start the peer, stream one eval clip in real time, print WER and timing")
    check.add_argument("wav", nargs="?", type=Path, default=JFK, help="a clip listed in its folder's manifest.jsonl")
    check.add_argument("--chunk-ms", type=int, default=100)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        if args.command == "install":
            install(args.venv, force=args.force)
        else:
            outcome = smoke(args.wav, chunk_ms=args.chunk_ms)
            print_smoke(outcome)
            return 1 if outcome["problem"] else 0
    except (ServerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
