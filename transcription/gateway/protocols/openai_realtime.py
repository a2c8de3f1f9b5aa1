"""OpenAI's Realtime API, transcription sessions (``/v1/realtime?intent=transcription``).

``session.update`` (and the beta ``transcription_session.update``) set the session before its
first audio; ``input_audio_buffer.append`` carries base64 audio (PCM at 24 kHz, or G.711 at 8 kHz),
``.commit`` ends the utterance, ``.clear`` drops it. Each utterance is a conversation item: speech
started and stopped, committed, transcription deltas that only append (the engine's ``stable``
partial text, which its final goes on from: engine/stabilizer.py) and ``completed`` with the stored final.
"""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from transcription.engine import TranscriptEvent
from transcription.engine.config import SessionLimits
from transcription.engine.stabilizer import Shown
from transcription.gateway.errors import ProtocolError
from transcription.gateway.events import Event, Failed
from transcription.gateway.protocols.choice import model_for

SAMPLE_RATE = 24000  # OpenAI's audio/pcm: 16-bit mono little-endian at 24 kHz
DEFAULT_TURN_DETECTION = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
# GA format types (session.audio.input.format.type) as our encoding and rate; G.711 is 8 kHz.
FORMATS = {"audio/pcm": ("pcm_s16le", SAMPLE_RATE), "audio/pcmu": ("mulaw", 8000), "audio/pcma": ("alaw", 8000)}
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}  # input_audio_format


def event_id() -> str:
    return f"event_{uuid.uuid4().hex[:20]}"


def error_event(message: str, *, code: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    error = {"type": kind, "code": code, "message": message, "param": None, "event_id": None}
    return {"type": "error", "event_id": event_id(), "error": error}


def error_kind(error: ProtocolError) -> str:
    """Our error codes in OpenAI's error types."""
    if error.code == "quota_exceeded":
        return "insufficient_quota"
    if error.code in ("concurrency_limit", "too_many_connections", "rate_limited"):
        return "rate_limit_error"
    return "server_error" if error.code in ("internal_error", "no_capacity") else "invalid_request_error"


def _object(value: Any, name: str) -> dict[str, Any]:
    """A member that must be a JSON object when present (absent or null: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError("invalid_value", f"'{name}' must be an object.")
    return value


@dataclass
class TranscriptionSettings:
    """A transcription session as the client configured it, in OpenAI's terms."""

    model: str = "whisper-1"
    language: str | None = None
    prompt: str = ""
    turn_detection: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_TURN_DETECTION))
    format_type: str = "audio/pcm"

    def update(self, session: dict[str, Any], *, beta: bool) -> None:
        """Apply a ``session.update``'s session (or a beta ``transcription_session.update``'s)."""
        if beta:
            audio_format = session.get("input_audio_format")
            transcription = session.get("input_audio_transcription")
            has_turn, turn = "turn_detection" in session, session.get("turn_detection")
        else:
            audio_in = _object(_object(session.get("audio"), "audio").get("input"), "audio.input")
            audio_format_object = _object(audio_in.get("format"), "audio.input.format")
            audio_format = audio_format_object.get("type")
            transcription = audio_in.get("transcription")
            has_turn, turn = "turn_detection" in audio_in, audio_in.get("turn_detection")
        if audio_format is not None:
            if not isinstance(audio_format, str) or audio_format not in FORMATS.keys() | BETA_FORMATS.keys():
                names = ", ".join(BETA_FORMATS if beta else FORMATS)
                raise ProtocolError("invalid_value", f"Audio format {audio_format!r} is not supported; use {names}.")
            self.format_type = BETA_FORMATS.get(audio_format, audio_format)
        if not beta:
            expected = FORMATS[self.format_type][1]
            if (rate := audio_format_object.get("rate", expected)) != expected:
                raise ProtocolError("invalid_value", f"{self.format_type} is {expected} Hz only, got {rate!r}.")
        if transcription is not None:
            transcription = _object(transcription, "transcription")
            for name in ("model", "language", "prompt"):
                if not isinstance(transcription.get(name) or "", str):
                    raise ProtocolError("invalid_value", f"'transcription.{name}' must be a string.")
            self.model = transcription.get("model") or self.model
            self.language = transcription.get("language") or self.language
            self.prompt = transcription.get("prompt") or self.prompt
        if has_turn:
            if turn is not None and not isinstance(turn, dict):
                raise ProtocolError("invalid_value", "'turn_detection' must be an object or null.")
            self.turn_detection = None if turn is None else {**DEFAULT_TURN_DETECTION, **turn}

    def start_options(self, limits: SessionLimits) -> dict[str, Any]:
        encoding, rate = FORMATS[self.format_type]
        options: dict[str, Any] = {"sample_rate": rate, "encoding": encoding, "interim_results": True}
        if self.language:
            options["language"] = str(self.language).split("-")[0].lower()
        if (model := model_for(self.model, limits)) is not None:
            options["model"] = model
        if self.prompt:
            options["prompt"] = self.prompt
        if self.turn_detection is None:  # the client commits: our VAD waits as long as it can
            options["endpointing_ms"] = limits.max_endpointing_ms
        else:
            silence = self.turn_detection.get("silence_duration_ms", 500)
            if isinstance(silence, bool) or not isinstance(silence, int):
                raise ProtocolError("invalid_value", "'silence_duration_ms' must be an integer.")
            options["endpointing_ms"] = min(max(silence, limits.min_endpointing_ms), limits.max_endpointing_ms)
        return options

    def public(self, *, beta: bool) -> dict[str, Any]:
        transcription = {"model": self.model, "language": self.language, "prompt": self.prompt}
        if beta:
            beta_name = next(name for name, ga in BETA_FORMATS.items() if ga == self.format_type)
            return {"object": "realtime.transcription_session", "input_audio_format": beta_name,
                    "input_audio_transcription": transcription, "turn_detection": self.turn_detection}  # fmt: skip
        audio_format: dict[str, Any] = {"type": self.format_type}
        if self.format_type == "audio/pcm":
            audio_format["rate"] = SAMPLE_RATE
        audio_input = {"format": audio_format, "transcription": transcription, "turn_detection": self.turn_detection,
                       "noise_reduction": None}  # fmt: skip
        return {"type": "transcription", "object": "realtime.transcription_session", "audio": {"input": audio_input}}


def decode_audio(message: dict[str, Any]) -> bytes:
    audio = message.get("audio")
    if not isinstance(audio, str):
        raise ProtocolError("invalid_value", "'audio' must be a base64 string.")
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("invalid_value", "'audio' is not valid base64.") from None


def parse(text: str, *, max_bytes: int) -> dict[str, Any]:
    if len(text) > max_bytes or len(text.encode()) > max_bytes:
        raise ProtocolError("message_too_large", f"Events are limited to {max_bytes} bytes.")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("invalid_json", "The event is not valid JSON.") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("invalid_event", "An event is a JSON object with a 'type'.")
    return data


@dataclass
class Items:
    """Our events as Realtime's: one conversation item per utterance (segment)."""

    settings: TranscriptionSettings
    session_key: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    shown: Shown = field(default_factory=Shown)
    speaking: int | None = None  # the segment speech_started was sent for
    committed: set[int] = field(default_factory=set)  # segments the client committed
    cleared: set[int] = field(default_factory=set)  # segments the client dropped: nothing more is sent

    def item_id(self, segment: int) -> str:
        return f"item_{self.session_key}_{segment:05d}"

    def previous(self, segment: int) -> str | None:
        return self.item_id(segment - 1) if segment > 0 else None

    def committed_event(self, segment: int) -> dict[str, Any]:
        return {"type": "input_audio_buffer.committed", "event_id": event_id(),
                "previous_item_id": self.previous(segment), "item_id": self.item_id(segment)}  # fmt: skip

    def render(self, event: Event) -> list[dict[str, Any]]:
        if isinstance(event, TranscriptEvent):
            if event.segment not in self.cleared:
                return self._transcript(event)
            if event.is_final:
                self.shown.final("")  # the next utterance starts afresh
            return []
        if isinstance(event, Failed):
            error = event.error
            return [error_event(error.message, code=error.code, kind=error_kind(error))]
        return []  # Ready, Closed (the client hung up), ResumedElsewhere: nothing to say

    def _transcript(self, event: TranscriptEvent) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        item = self.item_id(event.segment)
        vad = self.settings.turn_detection is not None
        if event.text.strip() and self.speaking != event.segment:
            self.speaking = event.segment
            if vad:
                out.append({"type": "input_audio_buffer.speech_started", "event_id": event_id(),
                            "audio_start_ms": round(event.start * 1000), "item_id": item})  # fmt: skip
        if not event.is_final:
            delta = self.shown.partial(event.stable)
            return out + ([self._delta(item, delta)] if delta else [])
        if vad and event.reason == "vad":
            out.append({"type": "input_audio_buffer.speech_stopped", "event_id": event_id(),
                        "audio_end_ms": round(event.end * 1000), "item_id": item})  # fmt: skip
        if event.segment not in self.committed:
            out.append(self.committed_event(event.segment))
        if rest := self.shown.final(event.text):
            out.append(self._delta(item, rest))
        usage = {"type": "duration", "seconds": round(max(event.end - event.start, 0.0), 3)}
        out.append({"type": "conversation.item.input_audio_transcription.completed", "event_id": event_id(),
                    "item_id": item, "content_index": 0, "transcript": event.text.strip(), "usage": usage})  # fmt: skip
        return out

    def _delta(self, item: str, delta: str) -> dict[str, Any]:
        return {"type": "conversation.item.input_audio_transcription.delta", "event_id": event_id(),
                "item_id": item, "content_index": 0, "delta": delta}  # fmt: skip
