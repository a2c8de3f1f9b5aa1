"""A file job followed from an HTTP request: polled every POLL_S until it ends or ASR_OPENAI_WAIT_S passes."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

from django.conf import settings

from api.openai.errors import OpenAIError
from transcription.models import FileTranscription, Segment

POLL_S = 0.2


async def follow(job_id: uuid.UUID, tenant_id: int) -> AsyncIterator[FileTranscription]:
    """The job as it stands at each poll, its session loaded; the last one is done.

    Raises OpenAIError when the job fails, or when it is not done in time (it goes on regardless)."""
    deadline = time.monotonic() + settings.ASR_OPENAI_WAIT_S
    while True:
        job = await FileTranscription.objects.select_related("session").aget(pk=job_id, tenant_id=tenant_id)
        if job.status == FileTranscription.Status.FAILED:
            raise OpenAIError(400, job.error_message or "The audio could not be transcribed.", code=job.error_code)
        yield job
        if job.status == FileTranscription.Status.DONE:
            return
        if time.monotonic() > deadline:
            raise OpenAIError(
                504,
                f"Not done within {settings.ASR_OPENAI_WAIT_S:g} s; it goes on as /api/v1/transcriptions/{job_id}.",
                kind="timeout",
            )
        await asyncio.sleep(POLL_S)


async def until_done(job_id: uuid.UUID, tenant_id: int) -> FileTranscription:
    async for job in follow(job_id, tenant_id):
        if job.status == FileTranscription.Status.DONE:
            return job
    raise OpenAIError(500, "The job ended without an outcome.", kind="server_error")  # follow never does


async def segments(job: FileTranscription, *, after: int = -1) -> list[Segment]:
    """The job's stored finals in order, those past index ``after`` only."""
    found = Segment.objects.filter(session_id=job.session_id, session__tenant_id=job.tenant_id, index__gt=after)
    return [segment async for segment in found.order_by("index")]
