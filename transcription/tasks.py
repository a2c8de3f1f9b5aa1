"""Celery tasks of the inference workers. Each only hands a command to the worker's runtime.

Every task of a session goes to the queue of the worker the session is pinned to, and a worker runs
its tasks one at a time (solo pool) in queue order, so a session's audio stays in order. ``epoch``
tells a session's current worker assignment from an earlier one after a failover.
"""

from celery import shared_task
from django.conf import settings

from transcription.engine import SessionConfig
from transcription.runner.contract import OpenSession
from transcription.workers.runtime import current_runtime


@shared_task(name="asr.open", ignore_result=True)
def asr_open(
    session_id: str,
    tenant_id: int,
    config: dict,
    reply_channel: str,
    epoch: int,
    resume_at_s: float = 0.0,
    first_segment: int = 0,
) -> None:
    """The arguments are :meth:`OpenSession.task_args`, read back into the typed message."""
    message = OpenSession(
        session_id=session_id,
        tenant_id=tenant_id,
        config=SessionConfig.from_dict(config),
        resume_at_s=resume_at_s,
        first_segment=first_segment,
    )
    runtime = current_runtime()
    runtime.submit(runtime.open(message, reply_channel=reply_channel, epoch=epoch))


@shared_task(name="asr.audio", ignore_result=True)
def asr_audio(session_id: str, epoch: int, data: bytes, sent_at: float) -> None:
    runtime = current_runtime()
    runtime.submit(runtime.audio(session_id=session_id, epoch=epoch, data=data, sent_at=sent_at))


@shared_task(name="asr.finalize", ignore_result=True)
def asr_finalize(session_id: str, epoch: int) -> None:
    runtime = current_runtime()
    runtime.submit(runtime.finalize(session_id=session_id, epoch=epoch))


@shared_task(name="asr.finish", ignore_result=True)
def asr_finish(session_id: str, epoch: int, reason: str) -> None:
    runtime = current_runtime()
    runtime.submit(runtime.finish(session_id=session_id, epoch=epoch, reason=reason))


@shared_task(name="asr.ping", ignore_result=True)
def asr_ping(reply_channel: str, seq: int, sent_at: float) -> None:
    """Answer on ``reply_channel`` through the same path results take (for the hop benchmark)."""
    runtime = current_runtime()
    runtime.submit(runtime.pong(reply_channel=reply_channel, seq=seq, sent_at=sent_at))


# A file job may run as long as the longest file takes to decode (far slower than real time only
# with a large model on CPU); the global 30 s limits are for the streaming tasks above.
FILE_TASK_TIME_LIMIT_S = int(settings.ASR_FILE_MAX_DURATION_S * 2 + 600)


@shared_task(
    name="asr.transcribe_file",
    ignore_result=True,
    acks_late=True,  # a job whose worker dies is delivered again, not lost
    reject_on_worker_lost=True,
    soft_time_limit=FILE_TASK_TIME_LIMIT_S,
    time_limit=FILE_TASK_TIME_LIMIT_S + 60,
)
def asr_transcribe_file(job_id: str) -> None:
    """Run a file transcription job (on a file worker: ``manage.py asr_file_worker``)."""
    from transcription.file_jobs import run_job

    run_job(job_id)
