"""Celery tasks of the inference workers. Each only hands a command to the worker's runtime.

Every task of a session goes to the queue of the worker the session is pinned to, and a worker runs
its tasks one at a time (solo pool) in queue order, so a session's audio stays in order. ``epoch``
tells a session's current worker assignment from an earlier one after a failover.
"""

from celery import shared_task

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
    runtime = current_runtime()
    runtime.submit(
        runtime.open(
            session_id=session_id,
            tenant_id=tenant_id,
            config=config,
            reply_channel=reply_channel,
            epoch=epoch,
            resume_at_s=resume_at_s,
            first_segment=first_segment,
        )
    )


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
