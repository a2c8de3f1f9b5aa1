"""One session over Deepgram's live API (``/v1/listen``), recorded as protocol v1's `StreamResult`.

`python -m bench load --protocol deepgram` measures Deepgram's clients with v1's code: the frames
leave on asrclient's schedule, and Deepgram's messages are recorded as v1's (``Results`` →
``partial``/``final``, ``Metadata`` → ``closed``, ``Error`` → ``error``), so `bench.metrics`
reads both alike. Deepgram's server admits the session during the handshake and says nothing
then: an accepted handshake is recorded as ``ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from asrclient import ReceivedMessage, StreamError, StreamResult, WavAudio, check_sendable
from asrclient.stream import FrameCallback, MessageCallback, send_frames

logger = logging.getLogger(__name__)

LISTEN_PATH = "/v1/listen"
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
CLOSE_STREAM = json.dumps({"type": "CloseStream"})
# v1's start options as Deepgram's query parameters; any other would be silently dropped, so it is refused.
QUERY_NAMES = {"endpointing_ms": "endpointing", "language": "language", "model": "model"}


def listen_url(url: str, *, sample_rate: int, start_options: dict[str, Any] | None = None) -> str:
    """``/v1/listen`` on the server of ``url`` (any of its ws:// URLs), asking for v1's ``start_options``."""
    options = dict(start_options or {})
    interim = options.pop("interim_results", True)
    if unknown := sorted(set(options) - set(QUERY_NAMES)):
        raise ValueError(f"no Deepgram query parameter for start option(s) {', '.join(unknown)}")
    query = {"encoding": "linear16", "sample_rate": sample_rate, "channels": 1}
    query["interim_results"] = "true" if interim else "false"
    query |= {QUERY_NAMES[name]: value for name, value in options.items()}
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, LISTEN_PATH, urlencode(query), ""))


class _Recorder:
    """Deepgram's messages → v1's in a StreamResult, as they arrive.

    Results carry no segment number: a final is numbered by the finals before it, and an interim
    result like the final that will replace it, as v1's server numbers them."""

    def __init__(self, result: StreamResult, on_message: MessageCallback | None):
        self.result = result
        self.on_message = on_message
        self.finals = 0

    def emit(self, data: dict[str, Any], arrival: float) -> None:
        self.result.messages.append(ReceivedMessage(arrival, data))
        if self.on_message is not None:
            self.on_message(data, arrival)

    def handle(self, raw: str | bytes, arrival: float) -> None:
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            logger.warning("ignoring a message that is not JSON (%d bytes)", len(raw))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "Results":
            self.results(message, arrival)
        elif kind == "Metadata":
            closed = {"session_id": message.get("request_id"), "audio_seconds": message.get("duration")}
            self.emit({"type": "closed", **closed, "segments": self.finals}, arrival)
        elif kind == "Error":
            self.emit({"type": "error", "code": message.get("variant"), "message": message.get("description")}, arrival)
        # SpeechStarted, UtteranceEnd: not measured

    def results(self, message: dict[str, Any], arrival: float) -> None:
        try:
            text = str(message["channel"]["alternatives"][0]["transcript"])
            start = float(message["start"])
            end = start + float(message["duration"])
        except (KeyError, IndexError, TypeError, ValueError):
            logger.warning("ignoring a malformed Results message")
            return
        final = bool(message.get("is_final"))
        data = {"type": "final" if final else "partial", "segment": self.finals, "text": text, "start": start,
                "end": end, "is_final": final}  # fmt: skip
        if final:
            speech_final, from_finalize = message.get("speech_final"), message.get("from_finalize")
            data["reason"] = "vad" if speech_final else "client" if from_finalize else ""
            self.finals += 1
        self.emit(data, arrival)

    async def receive(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self.handle(raw, time.monotonic())


async def stream_deepgram(
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
    drain_timeout: float = 120.0,
) -> StreamResult:
    """`stream_audio`'s session over Deepgram's protocol: ``Authorization: Token``, binary audio,
    ``CloseStream``, messages until the server closes. Raises StreamError only when no connection
    could be opened (a refusal is Deepgram's HTTP status)."""
    check_sendable(audio, chunk_ms)
    target = listen_url(url, sample_rate=audio.sample_rate, start_options=start_options)
    result = StreamResult(url=target, sample_rate=audio.sample_rate, realtime=realtime)
    try:
        ws = await connect(
            target,
            additional_headers={"Authorization": f"Token {api_key}"},
            max_size=4 * 1024 * 1024,
            compression=None,
            open_timeout=connect_timeout,
            ping_timeout=None,  # as asrclient's: a pong would wait behind paced audio
            proxy=None if urlsplit(target).hostname in LOOPBACK else True,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise StreamError(f"cannot connect to {target}: the server refused the WebSocket (HTTP {status})") from exc
    except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as exc:
        raise StreamError(f"cannot connect to {target}: {exc or type(exc).__name__}") from exc
    recorder = _Recorder(result, on_message)
    recorder.emit({"type": "ready", "session_id": ws.response.headers.get("dg-request-id") if ws.response else None},
                  time.monotonic())  # fmt: skip
    async with ws:
        receiver = asyncio.create_task(recorder.receive(ws))
        try:
            await send_frames(ws, audio, chunk_ms, realtime, result, receiver, on_frame_sent, stop_event)
            if not receiver.done():
                await ws.send(CLOSE_STREAM)
            await asyncio.wait_for(asyncio.shield(receiver), drain_timeout)
        except TimeoutError:
            result.timed_out = "the server to finish the session"
        except ConnectionClosed:
            pass  # the server closed first; the recorder has what it said
        finally:
            if not receiver.done():
                await ws.close()
            with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
                await receiver
    result.close_code = ws.close_code
    result.close_reason = ws.close_reason or ""
    return result
