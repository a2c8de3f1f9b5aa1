"""The `asrclient` command (or `python -m asrclient`): stream a WAV file, print the transcript."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import ssl
import sys
from typing import Any

from .stream import StreamError, stream_audio
from .wav import WavAudio, WavError, check_sendable, read_wav

logger = logging.getLogger(__name__)

DEFAULT_URL = "ws://127.0.0.1:8000/ws/v1/transcribe"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class HumanPrinter:
    """Partials rewritten in place on a terminal (dropped otherwise), finals one per line."""

    def __init__(self, stream: Any = None) -> None:
        self.out = stream or sys.stdout
        self.tty = self.out.isatty()
        self.partial_shown = False

    def _clear(self) -> None:
        if self.partial_shown:
            self.out.write("\r\x1b[2K")
            self.partial_shown = False

    def __call__(self, msg: dict[str, Any], arrival: float) -> None:
        kind = msg.get("type")
        text = str(msg.get("text") or "").strip()
        if kind == "partial" and self.tty:
            width = max(20, shutil.get_terminal_size().columns - 1)
            line = text if len(text) <= width else "…" + text[-(width - 1) :]
            self.out.write("\r\x1b[2K" + line)
            self.partial_shown = True
        elif kind == "final":
            self._clear()
            if text:
                start, end = _num(msg.get("start")), _num(msg.get("end"))
                speaker = f"Channel {int(msg['channel']) + 1}: " if isinstance(msg.get("channel"), int) else ""
                self.out.write(f"[{start:7.2f} -{end:7.2f}] {speaker}{text}\n")
        elif kind == "error":
            self._clear()
        elif kind in ("ready", "closed"):
            logger.info("%s %s", kind, json.dumps(msg, separators=(",", ":")))
        self.out.flush()

    def finish(self) -> None:
        self._clear()
        self.out.flush()


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _json_printer(msg: dict[str, Any], arrival: float) -> None:
    sys.stdout.write(json.dumps(msg, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def build_parser(prog: str = "asrclient") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("wav", help="WAV file: PCM 8/16/24/32-bit or float 32/64-bit, any channels")
    p.add_argument("--url", default=DEFAULT_URL, help=f"WebSocket URL (default {DEFAULT_URL})")
    p.add_argument("--api-key", default=os.environ.get("ASR_API_KEY"), help="API key (default: $ASR_API_KEY)")
    p.add_argument("--cafile", help="for wss://: trust the CA certificate(s) in this PEM file instead of the system's")
    p.add_argument("--realtime", action="store_true", help="pace frames at the speed of the audio")
    p.add_argument("--chunk-ms", type=int, default=100, help="audio per frame (default 100)")
    p.add_argument("--json", action="store_true", help="print each server message as a JSON line")
    p.add_argument("--endpointing-ms", type=int, help="trailing silence that ends an utterance")
    p.add_argument("--language", help="language code, e.g. en")
    p.add_argument(
        "--multichannel",
        action="store_true",
        help="transcribe each channel of the file on its own (a stereo call: agent and caller), "
        "finals marked with their channel; by default the channels are mixed down",
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the end after stop")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    return p


async def _run(args: argparse.Namespace, audio: WavAudio, ssl_context: ssl.SSLContext | None) -> int:
    options: dict[str, Any] = {}
    if args.language:
        options["language"] = args.language
    if args.endpointing_ms is not None:
        options["endpointing_ms"] = args.endpointing_ms
    if audio.channels > 1:
        options["multichannel"] = True
    printer = None if args.json else HumanPrinter()
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, _on_interrupt, stop_event)

    def on_message(msg: dict[str, Any], arrival: float) -> None:
        (_json_printer if printer is None else printer)(msg, arrival)
        if msg.get("type") == "error":
            print(f"error: {msg.get('code', '?')}: {msg.get('message', '')}", file=sys.stderr)

    try:
        result = await stream_audio(
            args.url,
            args.api_key,
            audio,
            chunk_ms=args.chunk_ms,
            realtime=args.realtime,
            start_options=options,
            on_message=on_message,
            stop_event=stop_event,
            drain_timeout=args.timeout,
            ssl_context=ssl_context,
        )
    finally:
        if printer is not None:
            printer.finish()
    problem = result.problem()
    if problem and not result.errors:
        print(f"error: {problem}", file=sys.stderr)
    if problem:
        return EXIT_FAILED
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


def _on_interrupt(stop_event: asyncio.Event) -> None:
    """First Ctrl-C: stop sending and collect the last finals; a second one quits at once."""
    if stop_event.is_set():
        raise KeyboardInterrupt
    print("\ninterrupted: finishing the session (Ctrl-C again to quit)", file=sys.stderr)
    stop_event.set()


def main(argv: list[str] | None = None, *, prog: str = "asrclient") -> int:
    """Exit 0 after a normal close, 1 on any server error or failed connection, 2 on bad input."""
    args = build_parser(prog).parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s %(message)s", level=level)
    try:
        audio = read_wav(args.wav, keep_channels=args.multichannel)
        check_sendable(audio, args.chunk_ms)
    except WavError as exc:
        print(f"error: {args.wav}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.api_key:
        print("error: no API key: pass --api-key or set ASR_API_KEY", file=sys.stderr)
        return EXIT_USAGE
    try:
        ssl_context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    except OSError as exc:  # ssl.SSLError included: not a PEM certificate
        print(f"error: --cafile {args.cafile}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logger.info(
        "sending file=%s duration_s=%.2f sample_rate=%d channels=%d format=%s",
        args.wav,
        audio.duration_s,
        audio.sample_rate,
        audio.source_channels,
        audio.source_format,
    )
    try:
        return asyncio.run(_run(args, audio, ssl_context))
    except StreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
