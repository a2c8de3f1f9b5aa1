"""WebSocket protocol v1: parsing client text messages and naming the errors and close codes."""

import json
from dataclasses import dataclass
from typing import Any

CLOSE_NORMAL = 1000
CLOSE_UNAUTHENTICATED = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_IDLE = 4008
CLOSE_LIMIT = 4029
CLOSE_BAD_REQUEST = 4400
# RFC 6455's 1011 cannot be sent by daphne (autobahn allows only 1000 and 3000–4999 from the
# server), so internal errors close with 4500; the error message says internal_error either way.
CLOSE_INTERNAL = 4500

CLIENT_MESSAGE_TYPES = ("start", "finalize", "keepalive", "stop")


class ProtocolError(Exception):
    """The client broke the protocol: answered with an ``error`` message and a close code."""

    def __init__(self, code: str, message: str, close_code: int = CLOSE_BAD_REQUEST, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code
        self.fields = fields  # extra members of the error message, e.g. retry_after_s


def worker_refusal(refusal: Exception) -> ProtocolError:
    """A ``registry.WorkerRefusal`` (no worker can take the session) as the client sees it."""
    return ProtocolError(refusal.code, refusal.message, CLOSE_LIMIT)


@dataclass(frozen=True)
class ClientMessage:
    type: str
    fields: dict[str, Any]


def parse_text_message(text: str, *, max_bytes: int) -> ClientMessage:
    """A client text frame → its type and fields; ``{"end_signal": true}`` means ``stop``."""
    if len(text.encode()) > max_bytes:
        raise ProtocolError("message_too_large", f"Text messages are limited to {max_bytes} bytes.")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("bad_message", "Text message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "Text message must be a JSON object.")
    if data == {"end_signal": True}:
        return ClientMessage("stop", {})
    kind = data.get("type")
    if kind not in CLIENT_MESSAGE_TYPES:
        raise ProtocolError(
            "unknown_message_type",
            f"Unknown message type {kind!r}; expected one of {', '.join(CLIENT_MESSAGE_TYPES)}.",
        )
    return ClientMessage(kind, data)


def error_message(code: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **fields}
