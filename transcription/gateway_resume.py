"""Resumable sessions in the gateway: parking a dropped session and continuing it (see resume.py)."""

import logging
import uuid
from typing import Any

from django.conf import settings

from transcription import gateway_db as db
from transcription import protocol, resume
from transcription.admission import get_admission
from transcription.dispatch import get_dispatcher
from transcription.engine import SessionConfig
from transcription.models import Session
from transcription.protocol import ProtocolError
from transcription.workers.registry import WorkerRefusal

logger = logging.getLogger(__name__)


class ResumeMixin:
    """Part of TranscribeConsumer: what happens when a client drops and when it comes back."""

    async def _park(self) -> None:
        """Keep the session's engine running for the resume grace period; see transcription/resume.py."""
        async with self.end_lock:
            if self.state != "streaming":
                return
            self.state = "closed"
            assert self.config is not None and self.handle is not None
            session_id, tenant_id = str(self.session_id), self.principal.tenant_id
            if resume.live_consumers.get(session_id) is self:
                del resume.live_consumers[session_id]
            resume.parking_lot.park(
                resume.ParkedSession(
                    session_id=session_id,
                    tenant_id=tenant_id,
                    api_key_id=self.principal.api_key_id,
                    resume_token_hash=self.resume_token_hash,
                    config=self.config,
                    handle=self.handle,
                    audio_bytes=self.audio_bytes,
                    segments=self.segments,
                    next_segment=self.next_segment,
                    store_final=lambda event: db.segment_store(tenant_id, self.session_id, event),
                    expire=_close_parked,
                ),
                settings.ASR_RESUME_GRACE_S,
            )
            await db.session_interrupt(tenant_id, self.session_id, self.audio_bytes / self.config.bytes_per_second)

    async def _resume(self, request: Any, config: SessionConfig) -> None:
        """Continue a dropped session: on its parked engine here, or from its stored finals."""
        if self.state != "waiting":
            raise ProtocolError("already_started", "The session has already started; send 'start' only once, first.")
        ask = resume.parse_resume_request(request)
        tenant_id = self.principal.tenant_id
        other = resume.live_consumers.get(ask.session_id)
        if other is not None and other is not self and other.principal.tenant_id == tenant_id:
            if resume.token_matches(ask.token, other.resume_token_hash):
                await other._yield_to_resume()  # the client noticed the drop before this server did
        parked = resume.parking_lot.peek(ask.session_id)
        if parked is not None:
            if parked.tenant_id != tenant_id or not resume.token_matches(ask.token, parked.resume_token_hash):
                raise resume.resume_failed()
            resume.parking_lot.claim(ask.session_id)
            self.config, self.handle = parked.config, parked.handle
            self.audio_bytes, self.segments, self.next_segment = (
                parked.audio_bytes,
                parked.segments,
                parked.next_segment,
            )
            async with parked.lock:  # let a final being stored while away land first
                self.handle.sink = self._on_event  # type: ignore[attr-defined]
            resend_from = parked.next_segment_at_park if ask.last_segment is None else ask.last_segment + 1
        else:
            row = await db.resumable_session(tenant_id, ask.session_id)
            if row is None or not resume.token_matches(ask.token, row.resume_token_hash):
                raise resume.resume_failed()
            resume_at_s, first_segment, stored = await db.resume_point(tenant_id, ask.session_id)
            try:
                self.handle = await get_dispatcher().open_session(
                    session_id=ask.session_id,
                    tenant_id=tenant_id,
                    config=config,
                    sink=self._on_event,
                    resume_at_s=resume_at_s,
                    first_segment=first_segment,
                )
            except WorkerRefusal as refusal:
                raise protocol.worker_refusal(refusal) from None
            self.config, self.segments, self.next_segment = config, stored, first_segment
            self.audio_bytes = round(resume_at_s * config.sample_rate) * config.bytes_per_frame
            resend_from = first_segment if ask.last_segment is None else ask.last_segment + 1
        try:
            await self._admit(uuid.UUID(ask.session_id))
        except ProtocolError:
            if self.handle is not None:  # keep nothing half-attached: store what it heard and close
                await self.handle.finish("disconnect")
                await db.session_finish(
                    tenant_id,
                    uuid.UUID(ask.session_id),
                    Session.CloseReason.DISCONNECT,
                    self.audio_bytes / self.config.bytes_per_second,
                )
            self.handle = None
            raise
        token, self.resume_token_hash = resume.new_resume_token()
        self.session_id, self.state = uuid.UUID(ask.session_id), "streaming"
        resume.live_consumers[ask.session_id] = self
        await db.session_resumed(tenant_id, self.session_id, self.resume_token_hash)
        resume_from_s = self.audio_bytes / self.config.bytes_per_second
        await self._send_ready(
            token, resumed=True, resume_from_s=round(resume_from_s, 3), next_segment=self.next_segment
        )
        for event in await db.finals_from(tenant_id, self.session_id, resend_from):
            await self._send_json(event.to_message())
        logger.info("session resumed session_id=%s from_s=%.2f", ask.session_id, resume_from_s)

    async def _yield_to_resume(self) -> None:
        """Another connection of the same client resumes this session: park it and let go of the socket."""
        await self._park()
        if self.connected:
            await self._send_json(
                protocol.error_message("resumed_elsewhere", "This session continues on a new connection.")
            )
            self.connected = False
            await self.close(code=protocol.CLOSE_NORMAL)


async def _close_parked(parked: "resume.ParkedSession") -> None:
    """The resume grace period ran out: finalize and store the open utterance, close the session."""
    await get_admission().release(parked.tenant_id, parked.session_id)
    await parked.handle.finish("disconnect")
    await db.session_finish(
        parked.tenant_id,
        uuid.UUID(parked.session_id),
        Session.CloseReason.DISCONNECT,
        parked.audio_bytes / parked.config.bytes_per_second,
    )
