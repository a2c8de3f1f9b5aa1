"""The contract between the gateway and whatever runs the engine."""

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from transcription.engine import SessionConfig, TranscriptEvent


@dataclass(frozen=True)
class EngineFailure:
    """The engine could not go on with a session; the gateway ends it.

    ``code`` is ``bad_audio`` when the client's audio was at fault (the message says why and is
    safe to show), ``internal_error`` otherwise.
    """

    code: str
    message: str


EventSink = Callable[[TranscriptEvent | EngineFailure], Awaitable[None]]


class SessionHandle(abc.ABC):
    """One session's link to its engine state. Audio is processed in the order it was pushed.

    ``sink`` (set at open) receives the results; it may be replaced while the session runs, as a
    resumed session moves from its parked sink to the new connection.
    """

    sink: EventSink

    @abc.abstractmethod
    async def push_audio(self, data: bytes) -> None:
        """Queue raw audio; waits (backpressure) while too much audio is already queued."""

    @abc.abstractmethod
    async def finalize(self) -> None:
        """End the open utterance now (client ``finalize``); the session goes on."""

    @abc.abstractmethod
    async def finish(self, reason: str) -> None:
        """Process everything queued, finalize the open utterance with ``reason``, free the state.

        Returns once every event of the session has been given to the sink.
        """


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
        resume); raises registry.WorkerRefusal (NoCapacity / Overloaded) when nothing can take it."""

    @property
    @abc.abstractmethod
    def engine_name(self) -> str: ...

    @abc.abstractmethod
    def languages(self) -> tuple[str, ...]: ...
