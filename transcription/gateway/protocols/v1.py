"""Protocol v1 (README, DESIGN.md): JSON text messages and raw audio frames."""

import json
from typing import Any

from transcription.engine import TranscriptEvent
from transcription.gateway.errors import CLOSE_NORMAL, ProtocolError
from transcription.gateway.events import (
    Audio,
    Closed,
    Command,
    Event,
    Failed,
    Finalize,
    Keepalive,
    Ready,
    ResumedElsewhere,
    Start,
    Stop,
)

CLIENT_MESSAGE_TYPES = ("start", "finalize", "keepalive", "stop")


def parse_text(text: str, *, max_bytes: int) -> Command:
    """A client text frame → its command; ``{"end_signal": true}`` (FunASR's) means ``stop``."""
    if len(text) > max_bytes or len(text.encode()) > max_bytes:
        raise ProtocolError("message_too_large", f"Text messages are limited to {max_bytes} bytes.")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("bad_message", "Text message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "Text message must be a JSON object.")
    if data == {"end_signal": True}:
        return Stop()
    kind = data.get("type")
    if kind not in CLIENT_MESSAGE_TYPES:
        raise ProtocolError(
            "unknown_message_type",
            f"Unknown message type {kind!r}; expected one of {', '.join(CLIENT_MESSAGE_TYPES)}.",
        )
    if kind == "start":
        options = {k: v for k, v in data.items() if k not in ("type", "resume")}
        return Start(options=options, resume=data.get("resume"))
    simple: dict[str, type[Finalize | Keepalive | Stop]] = {"finalize": Finalize, "keepalive": Keepalive, "stop": Stop}
    return simple[kind]()


def parse_binary(data: bytes) -> Command:
    return Audio(data)


def error_message(code: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **fields}


def render(event: Event) -> tuple[dict[str, Any], int | None]:
    """The message for an event, and the close code that follows it (None: the socket stays open)."""
    if isinstance(event, TranscriptEvent):
        return event.to_message(), None
    if isinstance(event, Ready):
        message: dict[str, Any] = {
            "type": "ready",
            "session_id": event.session_id,
            "config": event.config,
            "resume_token": event.resume_token,
        }
        return {**message, **(event.resumed or {}), "limits": event.limits}, None
    if isinstance(event, Failed):
        error = event.error
        return error_message(error.code, error.message, **error.fields), error.close_code
    if isinstance(event, Closed):
        message = {"type": "closed", "session_id": event.session_id}
        return {**message, "audio_seconds": event.audio_seconds, "segments": event.segments}, CLOSE_NORMAL
    if isinstance(event, ResumedElsewhere):
        return error_message("resumed_elsewhere", "This session continues on a new connection."), CLOSE_NORMAL
    raise TypeError(f"no v1 message for {event!r}")
