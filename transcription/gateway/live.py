"""What outlives a connection: the engine handle, the counters and the resume token of one session."""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from accounts.principal import Principal
from transcription.dispatch import get_dispatcher
from transcription.engine import SessionConfig, TranscriptEvent
from transcription.gateway import db, limits, outbox
from transcription.gateway.errors import CLOSE_LIMIT, ProtocolError
from transcription.gateway.events import Closed
from transcription.gateway.tokens import new_resume_token
from transcription.quota import LedgerKey, StreamCredit
from transcription.runner.contract import EngineFailure, SessionHandle, WorkerRefusal
from transcription.selectors import TenantAllowance

logger = logging.getLogger(__name__)

EventTarget = Callable[[TranscriptEvent | EngineFailure], Awaitable[None]]


class EventRelay:
    """The one sink an engine handle gets, for its whole life: it delivers to whoever holds the session."""

    def __init__(self, target: EventTarget) -> None:
        self._target = target
        self._lock = asyncio.Lock()

    async def deliver(self, event: TranscriptEvent | EngineFailure) -> None:
        async with self._lock:
            await self._target(event)

    async def attach(self, target: EventTarget) -> None:
        """Deliver to ``target`` from now on, once an event being delivered has landed."""
        async with self._lock:
            self._target = target


@dataclass(eq=False)
class LiveSession:
    """What outlives a connection: the engine, the counters and the resume token."""

    session_id: uuid.UUID
    principal: Principal
    config: SessionConfig
    handle: SessionHandle
    relay: EventRelay
    resume_token_hash: str
    allowance: TenantAllowance | None = None
    credit: StreamCredit | None = None  # set in __post_init__: audio the quota ledger granted, unused
    audio_bytes: int = 0
    segments: int = 0
    next_segment: int = 0
    next_segment_at_park: int = 0
    slot_held: bool = False

    def __post_init__(self) -> None:
        if self.credit is None:
            self.credit = StreamCredit(LedgerKey.of(self.principal.tenant_id, timezone.now()))

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received: where the session's clock stands."""
        return self.audio_bytes / self.config.bytes_per_second

    @property
    def metered_seconds(self) -> float:
        """Seconds metered (usage, quota, the session row): the audio once per channel transcribed."""
        return self.audio_bytes / self.config.bytes_per_metered_second

    def closed(self) -> Closed:
        audio_s = round(self.metered_seconds, 3)
        return Closed(str(self.session_id), audio_s, self.segments, duration_s=round(self.audio_seconds, 3))

    async def store_final(self, event: TranscriptEvent) -> None:
        """Keep a final and advance the counters: the one way a final is kept, connected or parked.

        Journaled in the outbox, then written; a database that is down delays the row, not the final.
        """
        op = outbox.final_op(self.principal.tenant_id, self.session_id, event)
        if not await outbox.get_outbox().put(op, wait_s=settings.ASR_OUTBOX_WAIT_S):
            logger.warning("final kept in the outbox until the database returns session_id=%s", self.session_id)
        self.segments += 1
        self.next_segment = event.segment + 1

    @classmethod
    async def open_new(
        cls,
        principal: Principal,
        config: SessionConfig,
        target: EventTarget,
        protocol: str,
        allowance: TenantAllowance | None = None,
        label: str = "",
    ) -> tuple["LiveSession", str]:
        """Admit a new session, give it an engine and a row; returns it with its resume token.

        ``allowance``: the tenant's, when the start already read it (for its session defaults)."""
        dispatcher = get_dispatcher()
        session_id = uuid.uuid4()
        credit = StreamCredit(LedgerKey.of(principal.tenant_id, timezone.now()))
        allowance = await limits.admit(principal, session_id, credit, allowance)
        relay = EventRelay(target)
        handle: SessionHandle | None = None
        try:
            handle = await dispatcher.open_session(
                session_id=str(session_id), tenant_id=principal.tenant_id, config=config, sink=relay.deliver
            )
            token, token_hash = new_resume_token()
            # The row exists only for sessions a worker took, so a refused start leaves nothing behind.
            await db.session_start(principal, config, dispatcher.engine_name, session_id, token_hash, protocol, label)
        except BaseException as error:  # no engine, slot or grant outlives a start that failed
            await _let_go(principal, session_id, credit, handle)
            if isinstance(error, WorkerRefusal):
                raise ProtocolError(error.code, error.message, CLOSE_LIMIT) from None
            raise
        live = cls(session_id, principal, config, handle, relay, token_hash, allowance, credit, slot_held=True)
        return live, token

    async def admit(self) -> None:
        """Take a stream slot again (a resumed session); refused like a new one."""
        assert self.credit is not None
        self.allowance = await limits.admit(self.principal, self.session_id, self.credit)
        self.slot_held = True

    async def finish(self, close_reason: str, utterance_reason: str) -> None:
        """Finalize and store the open utterance, close the row, free the slot and the unused quota
        grant: each step despite the others."""
        try:
            await self.handle.finish(utterance_reason)
        except Exception:
            logger.exception("engine finish failed session_id=%s", self.session_id)
        try:
            tenant_id, audio_s = self.principal.tenant_id, self.metered_seconds
            op = outbox.close_op(tenant_id, self.session_id, close_reason, audio_s, self.resume_token_hash)
            await outbox.get_outbox().put(op, wait_s=settings.ASR_OUTBOX_WAIT_S)
        except Exception:
            logger.exception("closing the session row failed session_id=%s", self.session_id)
        if self.slot_held:
            self.slot_held = False
            try:
                await limits.release(self.principal, self.session_id)
            except Exception:
                logger.warning("releasing the stream slot failed session_id=%s", self.session_id, exc_info=True)
        try:
            assert self.credit is not None
            await self.credit.give_back()
        except Exception:
            logger.warning("returning unused quota failed session_id=%s", self.session_id, exc_info=True)


async def _let_go(
    principal: Principal, session_id: uuid.UUID, credit: StreamCredit, handle: SessionHandle | None
) -> None:
    """Undo a start that failed half-way (a refusal, Redis or the database down): each step despite the others."""
    steps: list[Awaitable[None]] = [limits.release(principal, session_id), credit.give_back()]
    if handle is not None:
        steps.insert(0, handle.finish("disconnect"))
    for step in steps:
        try:
            await step
        except Exception:
            logger.warning("undoing a failed start failed session_id=%s", session_id, exc_info=True)
