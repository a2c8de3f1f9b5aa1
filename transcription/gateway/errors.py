"""Errors a session ends with, and the WebSocket close codes they map to (every protocol's)."""

from typing import Any

CLOSE_NORMAL = 1000
CLOSE_UNAUTHENTICATED = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_IDLE = 4008
CLOSE_LIMIT = 4029
CLOSE_BAD_REQUEST = 4400
# Internal errors close with 4500 (the error message says internal_error): clients written against
# the first gateway, whose server could not send RFC 6455's 1011, already know it.
CLOSE_INTERNAL = 4500


def standard_close_code(ours: int) -> int:
    """Our close codes for clients of other protocols, which know RFC 6455's: 1011 for timeouts and
    server errors, 1000 for a normal end, 1008 for every refusal."""
    return {CLOSE_IDLE: 1011, CLOSE_INTERNAL: 1011, CLOSE_NORMAL: 1000}.get(ours, 1008)


class ProtocolError(Exception):
    """Why a session ends badly: answered with an ``error`` message and a close code."""

    def __init__(self, code: str, message: str, close_code: int = CLOSE_BAD_REQUEST, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code
        self.fields = fields  # extra members of the error message, e.g. retry_after_s


def worker_refusal(refusal: Any) -> ProtocolError:
    """A worker refusal (no worker can take the session) as the client sees it."""
    return ProtocolError(refusal.code, refusal.message, CLOSE_LIMIT)


def internal_error() -> ProtocolError:
    return ProtocolError("internal_error", "Internal server error.", CLOSE_INTERNAL)


def engine_failure(failure: Any) -> ProtocolError:
    """An engine's failure (``runner.contract.EngineFailure``) as the client sees it."""
    close_code = {"bad_audio": CLOSE_BAD_REQUEST, "no_capacity": CLOSE_LIMIT}.get(failure.code, CLOSE_INTERNAL)
    return ProtocolError(failure.code, failure.message, close_code)
