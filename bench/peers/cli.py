"""`python -m bench.peers.<peer> install | smoke [WAV]`: the one command line every peer package offers."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.server import ServerError


def run_cli(
    argv: list[str] | None,
    *,
    prog: str,
    description: str | None,
    venv: Path,
    install: Callable[..., Any],
    smoke: Callable[..., dict[str, Any]],
    print_smoke: Callable[[dict[str, Any]], None],
    default_wav: Path,
) -> int:
    """Parse ``argv`` and run the peer's ``install`` (into ``venv``) or its ``smoke`` check."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("install", help=f"create the peer's venv at {venv}")
    setup.add_argument("--venv", type=Path, default=venv, help=f"where (default {venv})")
    setup.add_argument("--force", action="store_true", help="recreate it even if it works")
    check = commands.add_parser("smoke", help="start the peer, stream one eval clip in real time, print WER and timing")
    check.add_argument(
        "wav", nargs="?", type=Path, default=default_wav, help="a clip listed in its folder's manifest.jsonl"
    )
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
