"""A file job followed from an HTTP request (api/job_progress.py, shared with Deepgram's API), with
its failure and its not ending within ASR_OPENAI_WAIT_S as OpenAI's errors."""

import uuid
from collections.abc import AsyncIterator

from django.conf import settings

from api import job_progress
from api.openai.errors import OpenAIError
from transcription.models import FileTranscription

segments = job_progress.segments


async def follow(job_id: uuid.UUID, tenant_id: int) -> AsyncIterator[FileTranscription]:
    """The job as it stands at each poll, its session loaded; the last one is done.

    Raises OpenAIError when the job fails, or when it is not done in time (it goes on regardless)."""
    try:
        async for job in job_progress.follow(job_id, tenant_id, wait_s=settings.ASR_OPENAI_WAIT_S):
            if job.status == FileTranscription.Status.FAILED:
                raise OpenAIError(400, job.error_message or "The audio could not be transcribed.", code=job.error_code)
            yield job
    except job_progress.StillRunning as still:
        raise OpenAIError(504, str(still), kind="timeout") from None


async def until_done(job_id: uuid.UUID, tenant_id: int) -> FileTranscription:
    async for job in follow(job_id, tenant_id):
        if job.status == FileTranscription.Status.DONE:
            return job
    raise OpenAIError(500, "The job ended without an outcome.", kind="server_error")  # follow never does
