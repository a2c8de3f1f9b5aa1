"""FunASR's WebSocket protocol (its runtime's ``websocket_protocol.md``), over our session core.

The client's first JSON message sets the session (``mode``, ``audio_fs``, ``wav_format``,
``hotwords``…); binary PCM follows; ``{"is_speaking": false}`` ends it. Replies carry ``mode``,
``text``, ``wav_name``, ``is_final`` and ``timestamp``. FunASR's clients append every ``online``
and ``2pass-online`` text they get, so partials go out as deltas of the text the engine's partials
agreed on (``stable``, engine/stabilizer.py), which the final goes on from; a
``2pass-offline`` text replaces the utterance's online text, and is our final.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from transcription.engine import TranscriptEvent
from transcription.engine.stabilizer import Shown
from transcription.gateway.errors import ProtocolError
from transcription.gateway.events import Closed, Command, Event, Failed, Keepalive, Start, Stop

MODES = ("online", "offline", "2pass")
WAV_FORMATS = ("pcm", "wav")
# Other fields (chunk_size, chunk_interval, *_chunk_look_back, itn, svs_itn) tune FunASR's own
# models and mean nothing for ours: accepted and ignored.
MAX_WAV_NAME = 200


@dataclass
class Renderer:
    """Our events as FunASR's replies, for one connection."""

    mode: str = "2pass"
    wav_name: str = "demo"
    wav_format: str = "pcm"
    shown: Shown = field(default_factory=Shown)
    final_ended_stream: bool = False

    def render(self, event: Event) -> list[dict[str, Any]]:
        if isinstance(event, TranscriptEvent):
            return self._transcript(event)
        if isinstance(event, Closed) and not self.final_ended_stream:
            # The client waits for ``is_final`` before it hangs up, even when nothing was said.
            return [self._message(self._final_mode(), "", is_final=True)]
        if isinstance(event, Failed):
            error = event.error
            message = self._message(self._final_mode(), "", is_final=True)
            return [{**message, "error": error.code, "message": error.message}]
        return []  # Ready, Closed after the last final, ResumedElsewhere (FunASR cannot resume)

    def _final_mode(self) -> str:
        return {"2pass": "2pass-offline", "online": "online", "offline": "offline"}[self.mode]

    def _transcript(self, event: TranscriptEvent) -> list[dict[str, Any]]:
        if not event.is_final:
            delta = self.shown.partial(event.stable)
            if not delta or self.mode == "offline":
                return []
            return [self._message("2pass-online" if self.mode == "2pass" else "online", delta, is_final=False)]
        rest = self.shown.final(event.text)
        ended = event.reason in ("stop", "disconnect")
        self.final_ended_stream = self.final_ended_stream or ended
        text = rest if self.mode == "online" else event.text.strip()
        message = self._message(self._final_mode(), text, is_final=ended)
        message["timestamp"] = json.dumps([[round(event.start * 1000), round(event.end * 1000)]])
        return [message]

    def _message(self, mode: str, text: str, *, is_final: bool) -> dict[str, Any]:
        return {"mode": mode, "wav_name": self.wav_name, "text": text, "is_final": is_final}


def _hotwords(value: Any) -> list[str]:
    """FunASR's hotwords: a JSON object string ``{"word": weight}``, or words separated by spaces."""
    if not isinstance(value, str):
        raise ProtocolError("invalid_start", "'hotwords' must be a string.")
    try:
        weighted = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        weighted = None
    words = list(weighted) if isinstance(weighted, dict) else value.split()
    return [w.strip() for w in words if isinstance(w, str) and w.strip()]


def parse_first(data: dict[str, Any], renderer: Renderer) -> Start:
    """The first JSON message → our ``start`` (and the renderer learns the mode and wav_name)."""
    mode = data.get("mode", "2pass")
    if mode not in MODES:
        raise ProtocolError("invalid_start", f"'mode' must be one of {', '.join(MODES)}, got {mode!r}.")
    wav_format = data.get("wav_format", "pcm")
    wav_format = wav_format.lower() if isinstance(wav_format, str) else wav_format  # its HTML client sends "PCM"
    if wav_format not in WAV_FORMATS:
        raise ProtocolError(
            "invalid_start", f"'wav_format' {wav_format!r} is not supported; supported: {', '.join(WAV_FORMATS)}."
        )
    renderer.mode, renderer.wav_format = mode, wav_format
    renderer.wav_name = str(data.get("wav_name", renderer.wav_name))[:MAX_WAV_NAME]
    options: dict[str, Any] = {"interim_results": mode != "offline"}
    if "audio_fs" in data:
        options["sample_rate"] = data["audio_fs"]
    language = data.get("language", data.get("svs_lang"))
    if language is not None:
        if not isinstance(language, str):
            raise ProtocolError("invalid_start", "'svs_lang' must be a string.")
        options["language"] = language.strip().lower()  # its model: parse_start's choice, as for any client
    if data.get("hotwords"):
        options["hotwords"] = _hotwords(data["hotwords"])
    return Start(options)


def parse_text(text: str, *, max_bytes: int, started: bool, renderer: Renderer) -> Command:
    """A client text message → its command: the first sets the session, ``is_speaking: false`` ends it."""
    if len(text) > max_bytes or len(text.encode()) > max_bytes:
        raise ProtocolError("message_too_large", f"Text messages are limited to {max_bytes} bytes.")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("bad_message", "Text message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "Text message must be a JSON object.")
    if data.get("is_speaking") is False:
        return Stop()
    if not started:
        return parse_first(data, renderer)
    return Keepalive()  # FunASR's clients repeat their settings or ``is_speaking: true``: nothing changes
