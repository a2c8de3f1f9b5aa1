"""A file job followed from the HTTP request that made it, for the APIs that answer once it has ended
(OpenAI's, Deepgram's): polled every POLL_S until it is done or failed, for at most ``wait_s``."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

from transcription.models import FileTranscription, Segment

POLL_S = 0.2
ENDED = (FileTranscription.Status.DONE, FileTranscription.Status.FAILED)


class StillRunning(Exception):
    """The job did not end within the wait; it goes on, and is found under its id."""

    def __init__(self, job_id: uuid.UUID, wait_s: float) -> None:
        super().__init__(f"Not done within {wait_s:g} s; it goes on as /api/v1/transcriptions/{job_id}.")
        self.job_id, self.wait_s = job_id, wait_s


async def follow(job_id: uuid.UUID, tenant_id: int, *, wait_s: float) -> AsyncIterator[FileTranscription]:
    """The job as it stands at each poll, its session loaded; the last one has ended (done or failed).

    Raises StillRunning after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        job = await FileTranscription.objects.select_related("session").aget(pk=job_id, tenant_id=tenant_id)
        yield job
        if job.status in ENDED:
            return
        if time.monotonic() > deadline:
            raise StillRunning(job_id, wait_s)
        await asyncio.sleep(POLL_S)


async def until_ended(job_id: uuid.UUID, tenant_id: int, *, wait_s: float) -> FileTranscription:
    """The job once done or failed; StillRunning after ``wait_s``."""
    async for job in follow(job_id, tenant_id, wait_s=wait_s):
        if job.status in ENDED:
            return job
    raise RuntimeError("follow() ended without an ended job")  # it never does


async def segments(job: FileTranscription, *, after: int = -1) -> list[Segment]:
    """The job's stored finals in order, those past index ``after`` only."""
    found = Segment.objects.filter(session_id=job.session_id, session__tenant_id=job.tenant_id, index__gt=after)
    return [segment async for segment in found.order_by("index")]
