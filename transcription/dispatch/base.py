"""The gateway's side of dispatch: a :class:`Dispatcher` opens sessions wherever engines run.

The session handle contract itself (handle, open message, refusals) lives in ``runner/contract``,
below both dispatch and the workers; it is re-exported here for the gateway's imports.
"""

import abc

from transcription.engine import SessionConfig
from transcription.runner.contract import EngineFailure, EventSink, SessionHandle

__all__ = ["Dispatcher", "EngineFailure", "EventSink", "SessionHandle"]


class Dispatcher(abc.ABC):
    @abc.abstractmethod
    async def open_session(
        self,
        *,
        session_id: str,
        tenant_id: int,
        config: SessionConfig,
        sink: EventSink,
        resume_at_s: float = 0.0,
        first_segment: int = 0,
    ) -> SessionHandle:
        """Start recognising a session (continuing at ``resume_at_s`` / ``first_segment`` after a
        resume); raises runner.contract.WorkerRefusal (NoCapacity / Overloaded) when nothing can take it."""

    @property
    @abc.abstractmethod
    def engine_name(self) -> str: ...

    @abc.abstractmethod
    def languages(self) -> tuple[str, ...]: ...

    def close(self) -> None:  # noqa: B027 (optional hook: only dispatchers with threads override it)
        """Let this dispatcher's threads end once their work is done (process_state.reset, in tests)."""
