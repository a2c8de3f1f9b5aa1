"""One WhisperLiveKit session over its /asr WebSocket, recorded as our `StreamResult`.

WhisperLiveKit's protocol (its basic_server.py and web/live_transcription.js): the client opens
/asr?language=en; the server sends `{"type": "config", "useAudioWorklet": true, "mode": "full"}`
(useAudioWorklet: it takes raw PCM, started with --pcm-input); the client sends binary s16le
16 kHz mono PCM and, to stop, one empty binary message. While anything changes (every 50 ms at
most) the server sends its whole state: `lines` (`speaker`, `text`, `start`, `end` as "H:MM:SS.cc"
from the start of the stream) hold committed text — under LocalAgreement, words two successive
decodes agreed on, which are never revised; speaker -2 is a silence line after a long pause —
and `buffer_transcription` the unconfirmed tail. Once the stop is processed it sends
`{"type": "ready_to_stop"}` and waits for the client to close. Errors: `{"type": "error", "error"}`
or `"status": "error"`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from asrclient import ReceivedMessage, SentFrame, StreamError, StreamResult, WavAudio, check_sendable
from asrclient.stream import FrameCallback, MessageCallback
from asrclient.wav import frame_samples
from transcription.engine.audio import Resampler

logger = logging.getLogger(__name__)

SILENCE_SPEAKER = -2
CLOSE_TIMEOUT_S = 30.0


def seconds(stamp: Any) -> float:
    """WhisperLiveKit's "H:MM:SS.cc" (or a plain number) as seconds."""
    if isinstance(stamp, int | float):
        return float(stamp)
    total = 0.0
    for part in str(stamp).split(":"):
        total = total * 60 + float(part)
    return total


class _Translator:
    """WhisperLiveKit's state updates → protocol-v1 messages in a StreamResult, as they arrive.

    Text newly committed since the last update becomes a `final` (from the previous final's end,
    or its line's start, to its line's end); the unconfirmed buffer a `partial` numbered like the
    final that will follow, as in our protocol — one per change of its text, since the server
    resends its state every 50 ms with a lag counter that says nothing about decoding.
    """

    def __init__(self, session_id: str, result: StreamResult, on_message: MessageCallback | None):
        self.session_id = session_id
        self.result = result
        self.on_message = on_message
        self.ready = asyncio.Event()
        self.stopped = asyncio.Event()  # ready_to_stop: everything sent has been decoded
        self.finals = 0
        self.committed = ""  # committed text already sent on as finals
        self.last_final_end = 0.0
        self.buffer = ""  # the latest unconfirmed tail
        self.partial_text: str | None = None  # the open segment's latest partial
        self.audio_sent_s = 0.0  # set by the sender: a partial spans up to here

    def emit(self, data: dict[str, Any], arrival: float) -> ReceivedMessage:
        message = ReceivedMessage(arrival, data)
        self.result.messages.append(message)
        if self.on_message is not None:
            self.on_message(data, arrival)
        return message

    def error(self, code: str, text: str, arrival: float) -> None:
        self.emit({"type": "error", "code": code, "message": text}, arrival)
        self.ready.set()

    def handle(self, raw: str | bytes, arrival: float) -> None:
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            logger.warning("ignoring a WhisperLiveKit message that is not JSON (%d bytes)", len(raw))
            return
        if not isinstance(message, dict):
            logger.warning("ignoring a WhisperLiveKit message that is not an object")
            return
        kind = message.get("type")
        if kind == "config":
            if not message.get("useAudioWorklet"):
                self.error("whisperlivekit_not_pcm", "WhisperLiveKit expects WebM: start it with --pcm-input", arrival)
                return
            config = {"mode": message.get("mode")}
            self.emit({"type": "ready", "session_id": self.session_id, "config": config}, arrival)
            self.ready.set()
        elif kind == "ready_to_stop":
            self.stopped.set()
        elif kind == "error" or message.get("status") == "error":
            self.error("whisperlivekit_error", str(message.get("error") or "unknown error"), arrival)
        elif isinstance(message.get("lines"), list):
            self.update(message["lines"], str(message.get("buffer_transcription") or ""), arrival)

    def update(self, lines: list[Any], buffer: str, arrival: float) -> None:
        spoken: list[tuple[str, float, float]] = []
        for line in lines:
            try:
                if line.get("speaker") == SILENCE_SPEAKER or not line.get("text"):
                    continue
                spoken.append((str(line["text"]), seconds(line["start"]), seconds(line["end"])))
            except (AttributeError, KeyError, TypeError, ValueError):
                logger.warning("ignoring a malformed WhisperLiveKit line session=%s", self.session_id)
        committed = "".join(text for text, _, _ in spoken)
        if committed != self.committed:
            self.commit(committed, spoken, arrival)
        self.buffer = buffer.strip()
        if self.buffer and self.buffer != self.partial_text:
            start = self.last_final_end
            data = {"type": "partial", "segment": self.finals, "text": self.buffer, "start": start}
            self.emit(data | {"end": max(start, self.audio_sent_s), "is_final": False}, arrival)
            self.partial_text = self.buffer

    def commit(self, committed: str, spoken: list[tuple[str, float, float]], arrival: float) -> None:
        if not committed.startswith(self.committed):
            logger.warning("WhisperLiveKit revised committed text session=%s; finals keep it", self.session_id)
        done = len(self.committed)
        new = committed[done:].strip()
        self.committed = committed
        if not new:
            return
        offset, start = 0, self.last_final_end
        for text, line_start, _ in spoken:  # the line where the new text begins
            if offset + len(text) > done:
                start = line_start if offset >= done else max(line_start, self.last_final_end)
                break
            offset += len(text)
        end = spoken[-1][2]
        self.final(new, min(start, end), end, "committed", arrival)

    def final(self, text: str, start: float, end: float, reason: str, arrival: float) -> None:
        data = {"type": "final", "segment": self.finals, "text": text, "start": start, "end": end}
        self.emit(data | {"is_final": True, "reason": reason}, arrival)
        self.finals += 1
        self.last_final_end = end
        self.partial_text = None

    def close_open_segment(self, at: float) -> None:
        """At ready_to_stop an unconfirmed tail is the transcript's last words, as its web page shows them."""
        if self.buffer:
            end = max(self.last_final_end, self.audio_sent_s)
            self.final(self.buffer, self.last_final_end, end, "end_of_audio", at)
            self.buffer = ""

    async def receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self.handle(raw, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            self.ready.set()


async def stream_whisperlivekit(
    url: str,
    audio: WavAudio,
    *,
    chunk_ms: int = 100,
    realtime: bool = True,
    language: str = "en",
    start_options: dict[str, Any] | None = None,
    api_key: str | None = None,
    on_message: MessageCallback | None = None,
    on_frame_sent: FrameCallback | None = None,
    stop_event: asyncio.Event | None = None,
    connect_timeout: float = 10.0,
    ready_timeout: float = 60.0,
    drain_timeout: float = 120.0,
) -> StreamResult:
    """Run one WhisperLiveKit session at `url` (ws://host:port); takes `stream_audio`'s keyword arguments.

    Frames leave on the same absolute schedule as our client's, as s16le 16 kHz (resampled here
    if needed); SentFrame indices count samples of `audio` as given. After the last frame the
    client sends the empty stop message, as WhisperLiveKit's page does, waits for ready_to_stop
    (at most `drain_timeout`) and closes; a tail still unconfirmed then becomes a final with
    reason "end_of_audio". `ready` and `closed` are synthesised (the config message; a normal
    close after ready_to_stop) so `problem()` is None on a clean run. Of `start_options` only
    "language" means anything here. Raises StreamError only when no connection could be opened.
    """
    check_sendable(audio, chunk_ms)
    language = (start_options or {}).get("language", language)
    endpoint = f"{url.rstrip('/')}/asr?{urlencode({'language': language})}"
    result = StreamResult(url=endpoint, sample_rate=audio.sample_rate, realtime=realtime)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    try:
        ws = await connect(
            endpoint, additional_headers=headers, max_size=None, compression=None, open_timeout=connect_timeout,
            proxy=None,
        )  # fmt: skip
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise StreamError(f"cannot connect to {endpoint}: the server refused the WebSocket (HTTP {status})") from exc
    except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as exc:
        raise StreamError(f"cannot connect to {endpoint}: {exc or type(exc).__name__}") from exc
    translator = _Translator(str(uuid.uuid4()), result, on_message)
    waiting_for = "WhisperLiveKit's config message"
    async with ws:
        receiver = asyncio.create_task(translator.receive(ws))
        try:
            await asyncio.wait_for(translator.ready.wait(), ready_timeout)
            if not receiver.done() and result.of_type("ready"):
                await _send_frames(ws, audio, chunk_ms, realtime, result, translator, on_frame_sent, stop_event)
                if not receiver.done():
                    await ws.send(b"")
                    waiting_for = "WhisperLiveKit's ready_to_stop"
                    stopped = asyncio.create_task(translator.stopped.wait())
                    await asyncio.wait({stopped, receiver}, timeout=drain_timeout, return_when=asyncio.FIRST_COMPLETED)
                    stopped.cancel()
                    if not translator.stopped.is_set() and not receiver.done():
                        raise TimeoutError
                    translator.close_open_segment(time.monotonic())
            waiting_for = "WhisperLiveKit to close the connection"
            await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            result.timed_out = waiting_for
        except ConnectionClosed:
            pass  # WhisperLiveKit closed first; the receiver has recorded what it said
        finally:
            if not receiver.done():
                await ws.close()
            with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
                await receiver
    if translator.stopped.is_set() and ws.close_code == 1000:
        sent_s = round(result.frames[-1].audio_end_s, 3) if result.frames else 0.0
        closed = {"type": "closed", "session_id": translator.session_id, "audio_seconds": sent_s}
        translator.emit(closed | {"segments": translator.finals}, time.monotonic())
    result.messages.sort(key=lambda m: m.arrival)
    result.close_code = ws.close_code
    result.close_reason = ws.close_reason or ""
    return result


async def _send_frames(
    ws: ClientConnection,
    audio: WavAudio,
    chunk_ms: int,
    realtime: bool,
    result: StreamResult,
    translator: _Translator,
    on_frame_sent: FrameCallback | None,
    stop_event: asyncio.Event | None,
) -> None:
    """Our client's schedule (frame i at t0 + i*chunk, so jitter never accumulates), s16le 16 kHz."""
    step = frame_samples(audio.sample_rate, chunk_ms)
    chunk_s = step / audio.sample_rate
    resampler = Resampler(audio.sample_rate)
    t0 = result.started_at = time.monotonic()
    for index, begin in enumerate(range(0, audio.num_samples, step)):
        if translator.stopped.is_set() or result.errors or (stop_event is not None and stop_event.is_set()):
            result.interrupted = stop_event is not None and stop_event.is_set()
            return
        scheduled = t0 + index * chunk_s
        if realtime and (delay := scheduled - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        end = min(begin + step, audio.num_samples)
        samples = audio.samples[begin:end].astype(np.float32) / 32768.0
        out = resampler.process(samples, last=end == audio.num_samples)
        if out.size:  # an empty message would be WhisperLiveKit's stop
            await ws.send(np.clip(np.round(out * 32768.0), -32768, 32767).astype("<i2").tobytes())
        frame = SentFrame(index, time.monotonic(), scheduled, begin, end, end / audio.sample_rate)
        result.frames.append(frame)
        translator.audio_sent_s = frame.audio_end_s
        if on_frame_sent is not None:
            on_frame_sent(frame)
