"""One WhisperLive session over its WebSocket protocol, recorded as our `StreamResult`.

WhisperLive's protocol: a JSON options message (uid, language, task, model, use_vad, ...), then
binary float32 16 kHz audio, then the binary `END_OF_AUDIO`. It answers SERVER_READY, then
`{"uid", "segments": [...]}` after each decode: its last completed segments again and the open one,
with `start`/`end` as strings of seconds from the start of the stream and a `completed` flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from asrclient import ReceivedMessage, SentFrame, StreamError, StreamResult, WavAudio, check_sendable
from asrclient.stream import FrameCallback, MessageCallback
from asrclient.wav import frame_samples
from transcription.engine.audio import Resampler

logger = logging.getLogger(__name__)

SERVER_READY = "SERVER_READY"
END_OF_AUDIO = b"END_OF_AUDIO"
CLOSE_TIMEOUT_S = 30.0


def session_options(uid: str, *, language: str = "en", model: str = "tiny.en", use_vad: bool = True) -> dict[str, Any]:
    """WhisperLive's first message with its own client's defaults spelled out.

    `model` is only a name here: a server started with a custom model path serves that folder.
    """
    return {
        "uid": uid,
        "language": language,
        "task": "transcribe",
        "model": model,
        "use_vad": use_vad,
        "send_last_n_segments": 10,
        "no_speech_thresh": 0.45,
        "clip_audio": False,
        "same_output_threshold": 10,
    }


class _Translator:
    """WhisperLive's messages → protocol-v1 messages in a StreamResult, as they arrive.

    A segment seen completed for the first time, starting at or after the previous final's end
    (the rule of WhisperLive's own client), becomes a `final`; the open last segment a `partial`
    numbered like the final that will replace it, as in our protocol.
    """

    def __init__(self, uid: str, result: StreamResult, on_message: MessageCallback | None):
        self.uid = uid
        self.result = result
        self.on_message = on_message
        self.ready = asyncio.Event()
        self.finals = 0
        self.last_final_end = float("-inf")
        self.pending: ReceivedMessage | None = None  # the open segment's latest partial
        self.last_message_at = 0.0
        self.last_change_at = 0.0

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
            logger.warning("ignoring a WhisperLive message that is not JSON (%d bytes)", len(raw))
            return
        if not isinstance(message, dict) or message.get("uid") != self.uid:
            logger.warning("ignoring a WhisperLive message for another session")
            return
        status, note = message.get("status"), message.get("message")
        if status == "WAIT":
            self.error("server_full", f"WhisperLive is full; estimated wait {note} min", arrival)
        elif status == "ERROR":
            self.error("whisperlive_error", str(note), arrival)
        elif status:
            logger.warning("WhisperLive %s: %s uid=%s", status, note, self.uid)
        elif note == SERVER_READY:
            self.emit({"type": "ready", "session_id": self.uid, "config": {"backend": message.get("backend")}}, arrival)
            self.ready.set()
        elif note == "DISCONNECT":
            self.error("whisperlive_disconnect", "WhisperLive ended the session (max connection time)", arrival)
        elif isinstance(message.get("segments"), list):
            self.segments(message["segments"], arrival)

    def segments(self, segments: list[Any], arrival: float) -> None:
        self.last_message_at = arrival
        for index, segment in enumerate(segments):
            try:
                start, end = float(segment["start"]), float(segment["end"])
                text = str(segment.get("text") or "").strip()
            except (KeyError, TypeError, ValueError):
                logger.warning("ignoring a malformed WhisperLive segment uid=%s", self.uid)
                continue
            if segment.get("completed"):
                if start >= self.last_final_end:
                    self.final(text, start, end, "completed", arrival)
            elif index == len(segments) - 1:
                if self.pending is None or self.pending.data["text"] != text:
                    self.last_change_at = arrival
                data = {"type": "partial", "segment": self.finals, "text": text, "start": start, "end": end}
                self.pending = self.emit(data | {"is_final": False}, arrival)

    def final(self, text: str, start: float, end: float, reason: str, arrival: float) -> None:
        data = {"type": "final", "segment": self.finals, "text": text, "start": start, "end": end}
        self.emit(data | {"is_final": True, "reason": reason}, arrival)
        self.finals += 1
        self.last_final_end = end
        self.last_change_at = arrival
        self.pending = None

    def close_open_segment(self, at: float) -> None:
        """At END_OF_AUDIO the open segment is the transcript's last line, as in WhisperLive's client."""
        if self.pending is not None:
            data = self.pending.data
            self.final(data["text"], data["start"], data["end"], "end_of_audio", max(at, self.pending.arrival))

    async def receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self.handle(raw, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            self.ready.set()

    async def settle(self, receiver: asyncio.Task[None], *, quiet_s: float, settle_s: float, timeout: float) -> bool:
        """Wait until WhisperLive has nothing more to say about the audio sent; False on timeout.

        Nothing open and no message for `quiet_s`: done. A segment open: WhisperLive completes it
        once its text has repeated `same_output_threshold` times; stop waiting after `settle_s`
        without a new text (WhisperLive's own client waits 15 s so, then ends the stream).
        """
        began = time.monotonic()
        while not receiver.done():
            now = time.monotonic()
            if now - began >= timeout:
                return False
            if self.pending is None and now - max(began, self.last_message_at) >= quiet_s:
                return True
            if self.pending is not None and now - max(began, self.last_change_at) >= settle_s:
                return True
            await asyncio.sleep(0.05)
        return True


async def stream_whisperlive(
    url: str,
    audio: WavAudio,
    *,
    chunk_ms: int = 100,
    realtime: bool = True,
    language: str = "en",
    start_options: dict[str, Any] | None = None,
    api_key: str | None = None,
    use_vad: bool = True,
    on_message: MessageCallback | None = None,
    on_frame_sent: FrameCallback | None = None,
    stop_event: asyncio.Event | None = None,
    connect_timeout: float = 10.0,
    ready_timeout: float = 60.0,
    drain_timeout: float = 120.0,
    quiet_s: float = 2.0,
    settle_s: float = 15.0,
) -> StreamResult:
    """Run one WhisperLive session; takes `stream_audio`'s keyword arguments and returns its record.

    Frames leave on the same absolute schedule as our client's, as float32 16 kHz (resampled here
    if needed); SentFrame indices count samples of `audio` as given. After the last frame the
    client waits for WhisperLive to finish (`settle`, at most `drain_timeout`), then sends
    END_OF_AUDIO; a segment still open then becomes a final with reason "end_of_audio".
    `ready` and `closed` are synthesised (SERVER_READY; a normal close after END_OF_AUDIO) so
    `problem()` is None on a clean run. Of `start_options` only "language" means anything here.
    Raises StreamError only when no connection could be opened.
    """
    check_sendable(audio, chunk_ms)
    language = (start_options or {}).get("language", language)
    result = StreamResult(url=url, sample_rate=audio.sample_rate, realtime=realtime)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    try:
        ws = await connect(
            url, additional_headers=headers, max_size=None, compression=None, open_timeout=connect_timeout, proxy=None
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise StreamError(f"cannot connect to {url}: the server refused the WebSocket (HTTP {status})") from exc
    except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as exc:
        raise StreamError(f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
    uid = str(uuid.uuid4())
    translator = _Translator(uid, result, on_message)
    ended_at: float | None = None
    waiting_for = "WhisperLive's SERVER_READY"
    async with ws:
        receiver = asyncio.create_task(translator.receive(ws))
        try:
            await ws.send(json.dumps(session_options(uid, language=language, use_vad=use_vad)))
            await asyncio.wait_for(translator.ready.wait(), ready_timeout)
            if not receiver.done() and result.of_type("ready"):
                await _send_frames(ws, audio, chunk_ms, realtime, result, receiver, on_frame_sent, stop_event)
                if not await translator.settle(receiver, quiet_s=quiet_s, settle_s=settle_s, timeout=drain_timeout):
                    result.timed_out = "WhisperLive to complete the last segment"
                if not receiver.done():
                    await ws.send(END_OF_AUDIO)
                    ended_at = time.monotonic()
            waiting_for = "WhisperLive to close the session after END_OF_AUDIO"
            await asyncio.wait_for(asyncio.shield(receiver), CLOSE_TIMEOUT_S)
        except TimeoutError:
            result.timed_out = result.timed_out or waiting_for
        except ConnectionClosed:
            pass  # WhisperLive closed first; the receiver has recorded what it said
        finally:
            if not receiver.done():
                await ws.close()
            with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
                await receiver
    if ended_at is not None:
        translator.close_open_segment(ended_at)
        if ws.close_code == 1000 and receiver.done():
            sent_s = round(result.frames[-1].audio_end_s, 3) if result.frames else 0.0
            closed = {"type": "closed", "session_id": uid, "audio_seconds": sent_s, "segments": translator.finals}
            translator.emit(closed, time.monotonic())
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
    receiver: asyncio.Task[None],
    on_frame_sent: FrameCallback | None,
    stop_event: asyncio.Event | None,
) -> None:
    """Our client's schedule (frame i at t0 + i*chunk, so jitter never accumulates), float32 16 kHz."""
    step = frame_samples(audio.sample_rate, chunk_ms)
    chunk_s = step / audio.sample_rate
    resampler = Resampler(audio.sample_rate)
    t0 = result.started_at = time.monotonic()
    for index, begin in enumerate(range(0, audio.num_samples, step)):
        if receiver.done() or (stop_event is not None and stop_event.is_set()):
            result.interrupted = stop_event is not None and stop_event.is_set()
            return
        scheduled = t0 + index * chunk_s
        if realtime and (delay := scheduled - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        end = min(begin + step, audio.num_samples)
        samples = audio.samples[begin:end].astype(np.float32) / 32768.0
        out = resampler.process(samples, last=end == audio.num_samples)
        await ws.send(np.ascontiguousarray(out, dtype="<f4").tobytes())
        frame = SentFrame(index, time.monotonic(), scheduled, begin, end, end / audio.sample_rate)
        result.frames.append(frame)
        if on_frame_sent is not None:
            on_frame_sent(frame)
