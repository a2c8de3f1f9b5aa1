"""The contract between the gateway and whatever runs a session's engine (a thread or a worker)."""

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class OpenSession:
    """What opening a session tells its runner: which session, whose, how, and where to continue.

    ``resume_at_s`` / ``first_segment`` are non-zero when a session continues after a resume or a
    failover: the engine's clock starts there and segment numbers go on from there.
    """

    session_id: str
    tenant_id: int | None
    config: SessionConfig
    resume_at_s: float = 0.0
    first_segment: int = 0

    def task_args(self, *, reply_channel: str, epoch: int) -> list[Any]:
        """The ``asr.open`` Celery task's arguments, in the order ``tasks.asr_open`` takes them.

        ``reply_channel`` is where the worker sends results; ``epoch`` tells this assignment of the
        session to a worker from an earlier one (after a failover).
        """
        return [
            self.session_id,
            self.tenant_id,
            self.config.to_dict(),
            reply_channel,
            epoch,
            self.resume_at_s,
            self.first_segment,
        ]


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


class WorkerRefusal(Exception):
    """Nothing can take a session; ``code`` and ``message`` are what the client is told."""

    code = ""
    message = ""


class NoCapacity(WorkerRefusal):
    """No live worker at all."""

    code = "no_capacity"
    message = "No inference worker is available; try again shortly."


class Overloaded(WorkerRefusal):
    """Live workers exist, but every one is full or lagging behind real time."""

    code = "overloaded"
    message = "Every inference worker is busy; try again shortly."
