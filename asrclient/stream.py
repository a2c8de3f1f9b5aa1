"""One protocol-v1 session over a WebSocket, with every send and arrival timestamped.

Shared by the CLI and the benchmark, so both measure the same thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from .wav import MIN_FRAME_MS, WavAudio, check_sendable, frame_samples

logger = logging.getLogger(__name__)


class StreamError(RuntimeError):
    """The connection could not be opened; the message starts with 'cannot connect to'."""


@dataclass(frozen=True)
class SentFrame:
    """When a frame left the client and which samples it carried (the latency reference)."""

    index: int
    sent_at: float  # time.monotonic() right after the send
    scheduled_at: float  # when the real-time schedule wanted it sent
    start_sample: int
    end_sample: int  # exclusive; includes padding of a short last frame
    audio_end_s: float


@dataclass(frozen=True)
class ReceivedMessage:
    """A server message and when it arrived, on the same clock as SentFrame.sent_at."""

    arrival: float  # time.monotonic() when the message was read
    data: dict[str, Any]


@dataclass
class StreamResult:
    """Everything a stream produced, with timestamps on one clock, for the CLI and the bench."""

    url: str
    sample_rate: int
    realtime: bool = False
    frames: list[SentFrame] = field(default_factory=list)
    messages: list[ReceivedMessage] = field(default_factory=list)
    started_at: float | None = None  # monotonic time of the first frame's schedule
    close_code: int | None = None
    close_reason: str = ""
    timed_out: str = ""  # what the client gave up waiting for, if anything
    interrupted: bool = False

    def of_type(self, kind: str) -> list[ReceivedMessage]:
        return [m for m in self.messages if m.data.get("type") == kind]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m.data for m in self.of_type("error")]

    @property
    def closed_normally(self) -> bool:
        """True only for the protocol's happy ending: a `closed` message, then close code 1000."""
        return self.problem() is None

    def problem(self) -> str | None:
        """One line saying what went wrong, or None when the stream ended normally."""
        if self.errors:
            e = self.errors[0]
            return f"server error {e.get('code', '?')}: {e.get('message', '')}"
        if self.timed_out:
            return f"timed out waiting for {self.timed_out}"
        if self.close_code != 1000:
            reason = f" {self.close_reason}" if self.close_reason else ""
            return f"connection closed abnormally (code {self.close_code}{reason})"
        if not self.of_type("closed"):
            return "server closed the connection without a 'closed' message"
        return None


MessageCallback = Callable[[dict[str, Any], float], None]
FrameCallback = Callable[[SentFrame], None]


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in {"localhost", "127.0.0.1", "::1"}


async def _receive(
    ws: ClientConnection,
    result: StreamResult,
    ready: asyncio.Event,
    on_message: MessageCallback | None,
) -> None:
    """Record every message as it arrives; `ready` fires once streaming may begin (or cannot)."""
    try:
        async for raw in ws:
            arrival = time.monotonic()
            try:
                data = json.loads(raw)
            except (TypeError, ValueError):
                logger.warning("ignoring a message that is not JSON (%d bytes)", len(raw))
                continue
            if not isinstance(data, dict):
                logger.warning("ignoring a JSON message that is not an object")
                continue
            result.messages.append(ReceivedMessage(arrival, data))
            if data.get("type") in ("ready", "error", "closed"):
                ready.set()
            if on_message is not None:
                on_message(data, arrival)
    except ConnectionClosed:
        pass
    finally:
        ready.set()


async def stream_audio(
    url: str,
    api_key: str,
    audio: WavAudio,
    *,
    chunk_ms: int = 100,
    realtime: bool = False,
    start_options: dict[str, Any] | None = None,
    on_message: MessageCallback | None = None,
    on_frame_sent: FrameCallback | None = None,
    stop_event: asyncio.Event | None = None,
    connect_timeout: float = 10.0,
    ready_timeout: float = 60.0,
    drain_timeout: float = 120.0,
    ssl_context: ssl.SSLContext | None = None,
) -> StreamResult:
    """Run one session: start, frames (paced on an absolute schedule if realtime), stop, drain.

    Returns every message with its arrival time and every frame with its send time so that
    latency is measured against when the audio actually left the client. Raises StreamError
    only when no connection could be opened; server errors are in the result. ``ssl_context``
    replaces the system's default trust for ``wss://`` (e.g. a private CA); ``ws://`` ignores it.
    """
    check_sendable(audio, chunk_ms)
    start: dict[str, Any] = {"type": "start", "sample_rate": audio.sample_rate}
    start.update(encoding="pcm_s16le", channels=audio.channels)
    start.update(start_options or {})
    result = StreamResult(url=url, sample_rate=audio.sample_rate, realtime=realtime)
    # websockets refuses ssl=None for wss:// and any ssl for ws://
    tls: dict[str, Any] = {"ssl": ssl_context} if ssl_context is not None and urlsplit(url).scheme == "wss" else {}
    try:
        ws = await connect(
            url,
            additional_headers={"Authorization": f"Bearer {api_key}"},
            max_size=4 * 1024 * 1024,
            compression=None,  # audio does not compress; deflate would only cost CPU
            open_timeout=connect_timeout,
            # The server paces audio (and stops reading) when a client sends ahead of real time: a
            # pong then waits behind the audio already on the wire, so a ping timeout would cut a
            # healthy upload. The session's own idle timeout ends dead connections.
            ping_timeout=None,
            proxy=None if _is_loopback(url) else True,
            **tls,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        message = f"cannot connect to {url}: the server refused the WebSocket (HTTP {status})"
        raise StreamError(message) from exc
    except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as exc:
        raise StreamError(f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
    ready = asyncio.Event()
    waiting_for = "the server's 'ready' message"
    async with ws:
        receiver = asyncio.create_task(_receive(ws, result, ready, on_message))
        try:
            await ws.send(json.dumps(start))
            await asyncio.wait_for(ready.wait(), ready_timeout)
            if not receiver.done() and result.of_type("ready"):
                await send_frames(ws, audio, chunk_ms, realtime, result, receiver, on_frame_sent, stop_event)
                if not receiver.done():
                    await ws.send(json.dumps({"type": "stop"}))
            waiting_for = "the server to finish the session"
            await asyncio.wait_for(asyncio.shield(receiver), drain_timeout)
        except TimeoutError:
            result.timed_out = waiting_for
        except ConnectionClosed:
            pass  # the server closed first; the receiver has recorded why
        finally:
            if not receiver.done():
                await ws.close()
            with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
                await receiver
    result.close_code = ws.close_code
    result.close_reason = ws.close_reason or ""
    return result


async def send_frames(
    ws: ClientConnection,
    audio: WavAudio,
    chunk_ms: int,
    realtime: bool,
    result: StreamResult,
    receiver: asyncio.Task[None],
    on_frame_sent: FrameCallback | None,
    stop_event: asyncio.Event | None,
) -> None:
    """Frame i goes at t0 + i*chunk (absolute schedule), so send jitter never accumulates.

    Raw pcm_s16le frames, which other protocols' clients (the benchmark's Deepgram client) send as
    they are: sending with this, they pace the audio exactly as this client does."""
    step = frame_samples(audio.sample_rate, chunk_ms)
    min_samples = frame_samples(audio.sample_rate, MIN_FRAME_MS)
    chunk_s = step / audio.sample_rate
    t0 = result.started_at = time.monotonic()
    for index, begin in enumerate(range(0, audio.num_samples, step)):
        if receiver.done() or (stop_event is not None and stop_event.is_set()):
            result.interrupted = stop_event is not None and stop_event.is_set()
            return
        scheduled = t0 + index * chunk_s
        if realtime and (delay := scheduled - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        pcm = audio.samples[begin : begin + step]
        if len(pcm) < min_samples:  # the server refuses frames under 20 ms
            pad = np.zeros((min_samples - len(pcm), *pcm.shape[1:]), dtype=pcm.dtype)
            pcm = np.concatenate([pcm, pad])
        await ws.send(pcm.astype("<i2").tobytes())
        end = begin + len(pcm)
        frame = SentFrame(index, time.monotonic(), scheduled, begin, end, end / audio.sample_rate)
        result.frames.append(frame)
        if on_frame_sent is not None:
            on_frame_sent(frame)
