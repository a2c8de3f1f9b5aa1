"""Quotas and concurrency in the gateway: admitting a session, metering it, cutting it at its quota."""

import uuid

from transcription import gateway_db as db
from transcription import protocol
from transcription.admission import get_admission
from transcription.models import Session
from transcription.protocol import ProtocolError


class LimitsMixin:
    """Part of TranscribeConsumer: the tenant's concurrent-stream cap and monthly audio quota."""

    async def _admit(self, session_id: uuid.UUID) -> None:
        """Refuse a session over the tenant's monthly quota or concurrent-stream cap (4029)."""
        tenant_id = self.principal.tenant_id
        self.allowance = await db.tenant_allowance(tenant_id, session_id)
        if self.allowance.used_seconds >= self.allowance.quota_seconds:
            raise ProtocolError(
                "quota_exceeded",
                f"This month's audio quota ({self.allowance.quota_seconds:g} s) is used up.",
                protocol.CLOSE_LIMIT,
            )
        if not await get_admission().acquire(tenant_id, str(session_id), self.allowance.max_concurrent_streams):
            raise ProtocolError(
                "concurrency_limit",
                f"At most {self.allowance.max_concurrent_streams} concurrent streams are allowed for this account.",
                protocol.CLOSE_LIMIT,
            )
        self.slot_held = True

    async def _release_slot(self, session_id: uuid.UUID | str | None) -> None:
        if self.slot_held and session_id is not None:
            self.slot_held = False
            await get_admission().release(self.principal.tenant_id, str(session_id))

    def _audio_allowed(self, nbytes: int) -> int:
        """How many of ``nbytes`` fit in the tenant's quota (the rest is refused, exactly)."""
        assert self.config is not None and self.allowance is not None
        left_s = self.allowance.quota_seconds - self.allowance.used_seconds
        left_bytes = int(left_s * self.config.sample_rate) * self.config.bytes_per_frame - self.audio_bytes
        return max(0, min(nbytes, left_bytes))

    async def _flush_usage(self) -> None:
        """Write metered seconds, keep the stream slot alive, and see what other sessions used."""
        assert self.config is not None and self.session_id is not None
        tenant_id = self.principal.tenant_id
        await db.session_meter(tenant_id, self.session_id, self.audio_bytes / self.config.bytes_per_second)
        await get_admission().heartbeat(tenant_id, str(self.session_id))
        self.allowance = await db.tenant_allowance(tenant_id, self.session_id, self.principal.api_key_id)
        if not self.allowance.active:  # suspended by staff, or the key was revoked, while streaming
            await self._end(
                Session.CloseReason.FORBIDDEN,
                utterance_reason="disconnect",
                error=ProtocolError(
                    "forbidden", "This account or API key has been disabled.", protocol.CLOSE_FORBIDDEN
                ),
            )
