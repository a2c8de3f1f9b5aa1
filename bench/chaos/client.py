"""The chaos run's client: streams live audio, and on a dropped connection reconnects and resumes.

Protocol v1 resume: the first message on the new connection is a `start` with `resume` (session,
the last `ready`'s token, the last final held); the audio is re-sent from `resume_from_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

FRAME_MS = 100


@dataclass
class StreamLog:
    """What one client saw: its finals by segment number, and every way the stream was interrupted."""

    label: str
    session_id: str | None = None
    finals: dict[int, dict[str, Any]] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    received: int = 0
    connections: int = 0
    resumes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)
    closed: dict[str, Any] | None = None
    gave_up: str | None = None


class ResumingClient:
    """Streams `pcm` as if captured live (100 ms frames); on a dropped connection it reconnects for up
    to `retry_s` and resumes, re-sending the audio it holds from the server's `resume_from_s`."""

    def __init__(self, url: str, api_key: str, pcm: bytes, *, label: str, retry_s: float = 60.0):
        self.url = url
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.pcm = pcm
        self.frame = 16000 * 2 * FRAME_MS // 1000
        self.retry_s = retry_s
        self.log = StreamLog(label)
        self.token: str | None = None
        self.position = 0  # bytes of pcm the server has been sent on this connection
        self.captured_from = 0.0  # monotonic time the "microphone" started

    def _captured(self) -> int:
        """Bytes of audio the live source has produced by now."""
        produced = int((time.monotonic() - self.captured_from) * 16000) * 2
        return min(len(self.pcm), produced - produced % self.frame)

    async def run(self) -> StreamLog:
        self.captured_from = time.monotonic()
        failing_since: float | None = None
        while self.log.closed is None and self.log.gave_up is None:
            try:
                async with connect(self.url, additional_headers=self.headers, open_timeout=10) as ws:
                    self.log.connections += 1
                    if await self._connection(ws):
                        return self.log
                    failing_since = None
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                self.log.drops.append(f"{time.monotonic() - self.captured_from:.1f}s {type(exc).__name__}: {exc}")
                if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
                    self.log.gave_up = f"handshake {exc.response.status_code}"
                    break
            if self.log.errors and self.log.errors[-1].get("code") == "resume_failed":
                self.log.gave_up = "resume_failed"
                break
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > self.retry_s:
                self.log.gave_up = f"no connection for {self.retry_s:.0f} s"
                break
            await asyncio.sleep(0.5)
        return self.log

    async def _connection(self, ws: ClientConnection) -> bool:
        """One connection: start or resume, then send and receive; True once `closed` arrives."""
        start: dict[str, Any] = {
            "type": "start",
            "sample_rate": 16000,
            "language": "en",
            "interim_results": False,
            "endpointing_ms": 800,
        }
        if self.log.session_id and self.token:
            start["resume"] = {"session_id": self.log.session_id, "resume_token": self.token}
            if self.log.finals:
                start["resume"]["last_segment"] = max(self.log.finals)
        elif self.log.session_id:
            self.log.gave_up = "dropped before any resume token"
            return True
        await ws.send(json.dumps(start))
        sender: asyncio.Task[None] | None = None
        try:
            async for raw in ws:
                if not isinstance(raw, str):
                    continue
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ready":
                    self.token = message.get("resume_token")
                    self.log.session_id = message.get("session_id", self.log.session_id)
                    self.position = 0
                    if message.get("resumed"):
                        self.position = int(round(float(message["resume_from_s"]) * 16000)) * 2
                        self.log.resumes.append(
                            {k: message.get(k) for k in ("resume_from_s", "next_segment")}
                            | {"at_s": round(time.monotonic() - self.captured_from, 1)}
                        )
                    if sender is None:
                        sender = asyncio.create_task(self._send(ws))
                elif kind == "final":
                    self._final(message)
                elif kind == "error":
                    self.log.errors.append(message | {"at_s": round(time.monotonic() - self.captured_from, 1)})
                elif kind == "closed":
                    self.log.closed = message
                    return True
            return False
        finally:
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await sender

    def _final(self, message: dict[str, Any]) -> None:
        self.log.received += 1
        index = int(message["segment"])
        known = self.log.finals.get(index)
        if known is not None and known["text"] != message.get("text"):
            self.log.conflicts.append({"segment": index, "first": known["text"], "again": message.get("text")})
        if known is None:
            self.log.finals[index] = {k: message.get(k) for k in ("text", "start", "end")}

    async def _send(self, ws: ClientConnection) -> None:
        while self.position < len(self.pcm):
            if self.position >= self._captured():
                await asyncio.sleep(FRAME_MS / 1000)
                continue
            await ws.send(self.pcm[self.position : self.position + self.frame])
            self.position += self.frame
        await ws.send(json.dumps({"type": "stop"}))


async def run_clients(url: str, api_key: str, pcm: bytes, streams: int) -> list[StreamLog]:
    async def one(i: int) -> StreamLog:
        await asyncio.sleep(i * 1.0)
        return await ResumingClient(url, api_key, pcm, label=f"s{i + 1}").run()

    return list(await asyncio.gather(*(one(i) for i in range(streams))))
