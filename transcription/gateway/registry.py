"""This process's gateway state, in one place: connected and parked sessions, unstarted connections.

Everything here is per process: a session is connected to, or parked in, the gateway process that
holds its socket or its engine. ``reset()`` empties it between tests.
"""

import asyncio
import logging
from collections import Counter
from typing import Protocol

from accounts.principal import Principal
from asrplatform import process_state
from transcription.gateway.live import LiveSession

logger = logging.getLogger(__name__)


class Session(Protocol):
    """What the registry and a resuming connection need of a GatewaySession."""

    principal: Principal

    async def yield_to_resume(self) -> None: ...

    def hand_over(self, new_token_hash: str) -> LiveSession: ...

    async def expire(self) -> None: ...


class GatewayRegistry:
    def __init__(self) -> None:
        self.connected: dict[str, Session] = {}  # session id → the session with its client here
        self.parked: dict[str, Session] = {}  # session id → a session waiting for its client
        self.timers: dict[str, asyncio.Task] = {}
        self.unstarted: Counter[int] = Counter()  # tenant id → its connections that have not started

    # --- connected sessions ----------------------------------------------------------------

    def connect(self, session_id: str, session: Session) -> None:
        self.connected[session_id] = session

    def disconnect(self, session_id: str, session: Session) -> None:
        if self.connected.get(session_id) is session:
            del self.connected[session_id]

    # --- parked sessions -------------------------------------------------------------------

    def park(self, session_id: str, session: Session, grace_s: float) -> None:
        """Keep a session for ``grace_s``; then ``session.expire()`` closes it unless it was claimed."""
        self.parked[session_id] = session
        self.timers[session_id] = asyncio.create_task(self._expire_after(session_id, session, grace_s))
        logger.info("session parked session_id=%s grace_s=%s", session_id, grace_s)

    def claim(self, session_id: str) -> Session | None:
        """Take a parked session out (its timer stops). Synchronous, so two claims cannot both win."""
        session = self.parked.pop(session_id, None)
        timer = self.timers.pop(session_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        return session

    async def _expire_after(self, session_id: str, session: Session, grace_s: float) -> None:
        await asyncio.sleep(grace_s)
        if self.parked.get(session_id) is session:
            self.claim(session_id)
            logger.info("resume grace over, closing session_id=%s", session_id)
            await session.expire()

    # --- connections that have not started -------------------------------------------------

    def admit_unstarted(self, tenant_id: int, cap: int) -> bool:
        if self.unstarted[tenant_id] >= cap:
            return False
        self.unstarted[tenant_id] += 1
        return True

    def started(self, tenant_id: int) -> None:
        self.unstarted[tenant_id] -= 1
        if self.unstarted[tenant_id] <= 0:
            del self.unstarted[tenant_id]

    # --- tests -----------------------------------------------------------------------------

    def reset(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.connected.clear()
        self.parked.clear()
        self.timers.clear()
        self.unstarted.clear()


# Imported by name across the gateway, so process_state.reset() empties it in place.
registry = process_state.get(("gateway.registry",), GatewayRegistry, clear=GatewayRegistry.reset)
