"""A live session's finals POSTed to the tenant's URL as they come, signed as every callback is.

For calls (Twilio): the final is stored first (the transcript is the record); this is a
notification on top, sent in order from one task per session, each tried ``ATTEMPTS`` times. It
is not journaled: finals that could not be sent are in the transcript, not sent again later.
The URL is checked against the callback rules (webhook_targets: public addresses only) when the
session starts and at each request; the signature is transcription/webhooks.py's.
"""

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from transcription import webhook_targets
from transcription.engine import TranscriptEvent
from transcription.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

logger = logging.getLogger(__name__)

MAX_QUEUED = 200  # finals waiting to be sent; past this a final is not sent (it is stored)
ATTEMPTS = 2
RETRY_AFTER_S = 1.0
_running: set[asyncio.Task] = set()  # posters finishing after their session closed


@dataclass(frozen=True)
class CallContext:
    """What each POST says besides the final: whose call it is."""

    session_id: str
    fields: dict[str, Any]  # e.g. call_sid, stream_sid
    channel_names: tuple[str, ...]  # by channel number, e.g. ("inbound", "outbound")


class FinalPoster:
    def __init__(self, url: str, secret: str, context: CallContext, tenant_id: int) -> None:
        self.url, self.secret, self.context, self.tenant_id = url, secret, context, tenant_id
        self.queue: asyncio.Queue[TranscriptEvent | None] = asyncio.Queue(MAX_QUEUED)
        self.task = asyncio.create_task(self._run())
        _running.add(self.task)
        self.task.add_done_callback(_running.discard)
        self.dropped = 0

    def post(self, event: TranscriptEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def close(self) -> None:
        """No more finals: the task sends what is queued, then ends."""
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.task.cancel()

    async def _run(self) -> None:
        while (event := await self.queue.get()) is not None:
            await self._send(event)
        if self.dropped:
            logger.warning("final callbacks dropped session_id=%s count=%d", self.context.session_id, self.dropped)

    def body(self, event: TranscriptEvent) -> bytes:
        channel = event.channel or 0
        message = {
            "type": "final",
            "session_id": self.context.session_id,
            **self.context.fields,
            **event.to_message(),
            "channel": channel,
            "track": self.context.channel_names[channel] if channel < len(self.context.channel_names) else None,
        }
        message.pop("is_final", None)
        return json.dumps(message, ensure_ascii=False).encode()

    async def _send(self, event: TranscriptEvent) -> None:
        body = self.body(event)
        for attempt in range(1, ATTEMPTS + 1):
            answer = await asyncio.to_thread(self._request, body, attempt, event.segment)
            logger.info(
                "final callback session_id=%s tenant_id=%s segment=%d attempt=%d http_status=%s",
                self.context.session_id,
                self.tenant_id,
                event.segment,
                attempt,
                answer.status if answer.status is not None else "-",
            )
            if answer.ok:
                return
            await asyncio.sleep(RETRY_AFTER_S)

    def _request(self, body: bytes, attempt: int, segment: int) -> webhook_targets.Answer:
        """One signed POST (blocking: DNS, HTTP)."""
        try:
            target = webhook_targets.check(self.url)  # again: the host may resolve elsewhere by now
        except webhook_targets.TargetRefused as refusal:
            return webhook_targets.Answer(status=None, error=str(refusal)[:200])
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "asrplatform-webhook/1",
            "X-Asr-Request-Id": f"{self.context.session_id}:{segment}",
            "X-Asr-Attempt": str(attempt),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(self.secret, timestamp, body),
        }
        return webhook_targets.send(target, method="POST", body=body, headers=headers)


async def check_url(url: str) -> None:
    """TargetRefused when the URL may not be called (checked off the event loop: it resolves)."""
    await asyncio.to_thread(webhook_targets.check, url)
