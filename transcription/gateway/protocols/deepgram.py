"""Deepgram's live API (``/v1/listen``): its query parameters as our session options, our events as
its messages (``Results``, ``SpeechStarted``, ``UtteranceEnd``, ``Metadata``, ``Error``).

What Deepgram treats as formatting hints is accepted and ignored (Whisper writes punctuation and
case itself); features we do not have are refused, so a client never believes it got one.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from transcription.engine import TranscriptEvent
from transcription.engine.config import SessionLimits
from transcription.engine.registry import AUTO
from transcription.gateway.errors import (
    ProtocolError,
)
from transcription.gateway.events import Closed, Command, Event, Failed, Finalize, Keepalive, Ready, Stop
from transcription.gateway.protocols.choice import model_for

# Deepgram's encoding names, as ours. Opus comes in Ogg or WebM (told by the stream's first bytes);
# containerized audio may also come without 'encoding', as Deepgram asks.
ENCODINGS = {"linear16": "pcm_s16le", "linear32": "pcm_f32le", "mulaw": "mulaw", "alaw": "alaw", "opus": "opus",
             "ogg-opus": "opus"}  # fmt: skip
# Formatting hints (punctuate, smart_format, numerals...) and any parameter not named here are
# accepted and ignored: Whisper writes punctuation and case itself.
# Features we lack: refused when switched on.
REFUSED = frozenset(
    {"diarize", "diarize_model", "redact", "search", "replace", "detect_entities", "detect_language",
     "language_hint", "callback", "callback_method", "topics", "intents", "sentiment", "summarize", "mip_opt_in"}
)  # fmt: skip
OFF = ("false", "0", "")
MIN_UTTERANCE_END_MS, MAX_UTTERANCE_END_MS = 1000, 10000
MAX_QUERY_VALUES = 200  # repeated parameters (keyterm=…&keyterm=…) a connection may send
PUNCTUATION = ".,!?;:\"'()[]…。，！？、"  # around a word, not part of Deepgram's bare ``word``


def http_status(error: ProtocolError) -> int:
    """The HTTP status Deepgram answers a refused handshake with."""
    statuses = {"unauthenticated": 401, "forbidden": 403, "quota_exceeded": 402, "internal_error": 500}
    if error.code in statuses:
        return statuses[error.code]
    return 429 if error.code in ("rate_limited", "concurrency_limit", "too_many_connections") else 400


def refusal_body(error: ProtocolError, request_id: str) -> dict[str, Any]:
    return {"err_code": error.code.upper(), "err_msg": error.message, "request_id": request_id}


@dataclass(frozen=True)
class ListenRequest:
    """What a ``/v1/listen`` connection asked for, as our ``start`` options plus Deepgram's own extras."""

    options: dict[str, Any]
    declared_format: bool  # ``encoding`` given: the session starts at once; else with the first audio
    interim_results: bool
    vad_events: bool
    utterance_end_ms: int | None


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in OFF:
        return False
    raise ProtocolError("invalid_start", f"'{name}' must be true or false, got {value!r}.")


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ProtocolError("invalid_start", f"'{name}' must be an integer, got {value!r}.") from None


def _language(value: str) -> str:
    """Deepgram's BCP-47 tags (``en-US``, ``zh-CN``) as our base languages; ``multi`` is our ``auto``."""
    lowered = value.strip().lower()
    return AUTO if lowered == "multi" else lowered.split("-")[0]


def parse_query(query: dict[str, list[str]], limits: SessionLimits) -> ListenRequest:
    """The connection's query string (``urllib.parse.parse_qs`` of it) → the session it asks for."""
    if sum(len(v) for v in query.values()) > MAX_QUERY_VALUES:
        raise ProtocolError("invalid_start", f"At most {MAX_QUERY_VALUES} query parameters are accepted.")
    one = {name: values[-1] for name, values in query.items()}
    for name in sorted(REFUSED & one.keys()):
        if one[name].strip().lower() not in OFF:
            raise ProtocolError("invalid_start", f"'{name}' is not supported by this server.")
    options: dict[str, Any] = {}
    encoding = one.get("encoding")
    if encoding is not None:
        if encoding not in ENCODINGS:
            raise ProtocolError(
                "invalid_start", f"encoding {encoding!r} is not supported; supported: {', '.join(ENCODINGS)}."
            )
        options["encoding"] = ENCODINGS[encoding]
    for name in ("sample_rate", "channels"):
        if name in one:
            options[name] = _integer(name, one[name])
    if "multichannel" in one:
        options["multichannel"] = _flag("multichannel", one["multichannel"])
    language = _language(one["language"]) if "language" in one else None
    model = model_for(one.get("model"), limits)
    if model is not None:
        options["model"] = model
    if language is not None:
        options["language"] = language
    endpointing = one.get("endpointing")
    if endpointing is not None:
        # Deepgram's default is 10 ms, its 'false' no endpointing: both within our bounds.
        ms = limits.max_endpointing_ms if endpointing.strip().lower() in OFF else _integer("endpointing", endpointing)
        options["endpointing_ms"] = min(max(ms, limits.min_endpointing_ms), limits.max_endpointing_ms)
    hotwords = [term.rsplit(":", 1)[0] if ":" in term else term for term in query.get("keywords", [])]
    hotwords += query.get("keyterm", [])
    if hotwords:
        options["hotwords"] = [h for h in hotwords if h.strip()]
    utterance_end_ms = None
    if "utterance_end_ms" in one:
        utterance_end_ms = _integer("utterance_end_ms", one["utterance_end_ms"])
        if not MIN_UTTERANCE_END_MS <= utterance_end_ms <= MAX_UTTERANCE_END_MS:
            raise ProtocolError(
                "invalid_start",
                f"'utterance_end_ms' must be between {MIN_UTTERANCE_END_MS} and {MAX_UTTERANCE_END_MS}.",
            )
    interim = _flag("interim_results", one.get("interim_results", "false"))
    vad_events = _flag("vad_events", one.get("vad_events", "false"))
    # Partials also mark where speech starts and ends, for SpeechStarted and UtteranceEnd.
    options["interim_results"] = interim or vad_events or utterance_end_ms is not None
    return ListenRequest(options, encoding is not None, interim, vad_events, utterance_end_ms)


def parse_text(text: str, *, max_bytes: int) -> Command | dict[str, Any]:
    """A client text message → its command, or the reply for one that changes nothing (the stream goes on)."""
    if len(text) > max_bytes or len(text.encode()) > max_bytes:
        raise ProtocolError("message_too_large", f"Text messages are limited to {max_bytes} bytes.")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        data = None
    kind = data.get("type") if isinstance(data, dict) else None
    commands: dict[str, type[Keepalive | Finalize | Stop]] = {
        "KeepAlive": Keepalive,
        "Finalize": Finalize,
        "CloseStream": Stop,
    }
    if isinstance(kind, str) and kind in commands:
        return commands[kind]()
    if kind == "Configure":
        description = "Mid-stream configuration is not supported by this server; the stream goes on unchanged."
        return {"type": "ConfigureFailure", "request_id": "", "code": "CONFIGURE_INTERNAL_ERROR",
                "description": description}  # fmt: skip
    return {
        "type": "Error",
        "variant": "SchemaError",
        "description": "Expected a JSON message of type KeepAlive, Finalize, CloseStream or Configure.",
        "message": text[:200],
    }


def _spread_words(text: str, start: float, end: float) -> list[dict[str, Any]]:
    """Words of a result without word timings: the span shared evenly, confidence 0 (not measured).

    Deepgram sessions do not ask the decoder for word timings: those take another decoding path,
    and the same audio must give the same text whatever the protocol."""
    words = text.split()
    step = (end - start) / len(words) if words else 0.0
    return [
        {"word": bare_word(w), "start": round(start + i * step, 3), "end": round(start + (i + 1) * step, 3),
         "confidence": 0.0, "punctuated_word": w}
        for i, w in enumerate(words)
    ]  # fmt: skip


def bare_word(word: str) -> str:
    """Deepgram's ``word``: lower case, no punctuation around it (``punctuated_word`` keeps both)."""
    return word.strip().strip(PUNCTUATION).lower() or word.strip().lower()


def model_uuid(name: str) -> str:
    """A stable id per model name, the same for live streams and pre-recorded results."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"asrplatform:{name}"))


def _words(event: TranscriptEvent) -> list[dict[str, Any]]:
    if not event.words:
        return _spread_words(event.text, event.start, event.end)
    return [
        {"word": bare_word(w.word), "start": round(w.start, 3), "end": round(w.end, 3),
         "confidence": round(w.probability, 4), "punctuated_word": w.word.strip()}
        for w in event.words
        if w.word.strip()
    ]  # fmt: skip


@dataclass
class Renderer:
    """Our events as Deepgram's messages, for one connection (it keeps what they depend on)."""

    request: ListenRequest
    model: str
    channels: int = 1
    multichannel: bool = False  # results per channel: channel_index [channel, channels]
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    audio_hash: Any = field(default_factory=hashlib.sha256)
    # Per channel (0 when mixed down): the segment SpeechStarted was sent for, and the last final
    # word's end while an UtteranceEnd is owed.
    speaking_segment: dict[int, int] = field(default_factory=dict)
    utterance_end_due: dict[int, float] = field(default_factory=dict)

    @property
    def model_uuid(self) -> str:
        return model_uuid(self.model)

    def audio(self, data: bytes) -> None:
        self.audio_hash.update(data)

    def render(self, event: Event) -> list[dict[str, Any]]:
        if isinstance(event, Ready):
            self.request_id = event.session_id
            self.model = str(event.config.get("model") or self.model)
            self.channels = int(event.config.get("channels", 1))
            self.multichannel = bool(event.config.get("multichannel", False))
            return []
        if isinstance(event, TranscriptEvent):
            return self._transcript(event)
        if isinstance(event, Closed):
            return [self._metadata(event.audio_seconds if event.duration_s is None else event.duration_s)]
        if isinstance(event, Failed):
            error = event.error
            return [{"type": "Error", "variant": error.code, "description": error.message}]
        return []  # ResumedElsewhere: this protocol cannot resume

    def _channel_index(self, channel: int | None) -> list[int]:
        """Deepgram's ``[channel, channels]``: [0, 1] unless the session transcribes channels apart."""
        return [channel or 0, self.channels] if self.multichannel else [0, 1]

    def _transcript(self, event: TranscriptEvent) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        channel = event.channel or 0
        if event.text.strip() and self.speaking_segment.get(channel) != event.segment:
            self.speaking_segment[channel] = event.segment
            self.utterance_end_due.pop(channel, None)  # speech again: the last utterance has not ended for good
            if self.request.vad_events:
                started = {"type": "SpeechStarted", "channel": self._channel_index(channel)}
                messages.append({**started, "timestamp": round(event.start, 3)})
        if event.is_final or self.request.interim_results:
            messages.append(self._results(event))
        if event.is_final and event.text.strip() and self.request.utterance_end_ms is not None:
            self.utterance_end_due[channel] = event.end
        return messages

    def _results(self, event: TranscriptEvent) -> dict[str, Any]:
        words = _words(event)
        confidence = event.confidence if event.is_final and event.confidence is not None else 0.0
        return {
            "type": "Results",
            "channel_index": self._channel_index(event.channel),
            "start": round(event.start, 3),
            "duration": round(max(event.end - event.start, 0.0), 3),
            "is_final": event.is_final,
            "speech_final": event.is_final and event.reason == "vad",
            "from_finalize": event.is_final and event.reason == "client",
            "channel": {"alternatives": [{"transcript": event.text.strip(), "confidence": round(confidence, 4),
                                          "words": words}]},
            "metadata": {"request_id": self.request_id, "model_uuid": self.model_uuid,
                         "model_info": {"name": self.model, "version": "asrplatform", "arch": "whisper"}},
        }  # fmt: skip

    def utterance_end(self, audio_s: float) -> dict[str, Any] | None:
        """``UtteranceEnd`` once ``utterance_end_ms`` of session audio passed a channel's last final
        word with no new speech on it (one channel a call: call again while it gives one)."""
        gap_ms = self.request.utterance_end_ms
        if gap_ms is None:
            return None
        ended = [c for c, due in self.utterance_end_due.items() if audio_s >= due + gap_ms / 1000]
        if not ended:
            return None
        channel = min(ended)
        due = self.utterance_end_due.pop(channel)
        return {"type": "UtteranceEnd", "channel": self._channel_index(channel), "last_word_end": round(due, 3)}

    def _metadata(self, audio_seconds: float) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": self.audio_hash.hexdigest(),
            "created": self.created,
            "duration": audio_seconds,
            "channels": self.channels,
            "models": [self.model_uuid],
            "model_info": {self.model_uuid: {"name": self.model, "version": "asrplatform", "arch": "whisper"}},
        }
