"""The peer end to end: start WhisperLiveKit, stream one eval clip in real time, score it."""

from __future__ import annotations

from pathlib import Path

from ..smoke import JFK, print_smoke, smoke_peer
from .server import WhisperLiveKitServer
from .stream import stream_whisperlivekit

__all__ = ["JFK", "print_smoke", "smoke"]


def smoke(
    wav: Path = JFK, *, chunk_ms: int = 100, tail_s: float = 1.0, server: WhisperLiveKitServer | None = None
) -> dict:
    """One clip (from its folder's manifest) plus `tail_s` of silence, through `bench.metrics.analyse`."""
    peer = server or WhisperLiveKitServer()
    return smoke_peer(wav, peer, stream_whisperlivekit, system="WhisperLiveKit", chunk_ms=chunk_ms, tail_s=tail_s)
