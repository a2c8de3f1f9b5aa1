"""Running one file job: claim it, decode the upload, feed the engine, store its finals, report
progress and meter it, cut it at the tenant's quota, and write how it ended (file_jobs.py queues it).

Files go through the same engine as live streams; a ``multichannel`` job runs one utterance stream
per channel of the file (engine/multichannel.py) and meters its audio once per channel.
"""

import logging
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from transcription import audiofile, quota, selectors, services
from transcription.engine import SessionConfig
from transcription.engine.audio import TARGET_RATE
from transcription.engine.models import load_models
from transcription.engine.multichannel import open_engine_session
from transcription.engine_settings import model_settings_from_django
from transcription.models import FileTranscription, Session
from transcription.quota import LedgerKey

if TYPE_CHECKING:
    from django.db.models import QuerySet

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # wall-clock seconds between progress (and metering) writes


def stalled(older_than_s: float | None = None) -> "QuerySet[FileTranscription]":
    """Running jobs whose worker stopped reporting for ``older_than_s`` (ASR_FILE_JOB_STALE_S)."""
    threshold = settings.ASR_FILE_JOB_STALE_S if older_than_s is None else older_than_s
    cutoff = timezone.now() - timedelta(seconds=threshold)
    return FileTranscription.objects.filter(status=FileTranscription.Status.RUNNING, session__last_seen_at__lt=cutoff)


def _claim(job_id: uuid.UUID | str, *, takeover: bool = False) -> FileTranscription | None:
    """Mark the job running. A job found ``running`` is taken again only if its worker died mid-way
    (no heartbeat for ASR_FILE_JOB_STALE_S, or ``takeover``: a restarted embedded server); a second
    delivery of a job that runs is dropped. Segments are written idempotently."""
    with transaction.atomic():
        job = FileTranscription.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in (FileTranscription.Status.DONE, FileTranscription.Status.FAILED):
            return None
        if job.status == FileTranscription.Status.RUNNING and not takeover and not stalled().filter(pk=job.pk).exists():
            logger.info("file job runs elsewhere, this delivery dropped job_id=%s", job.pk)
            return None
        job.status = FileTranscription.Status.RUNNING
        job.started_at = timezone.now()
        job.processed_s = 0.0
        job.save(update_fields=["status", "started_at", "processed_s"])
        Session.objects.filter(pk=job.session_id).update(last_seen_at=timezone.now())
        return job


class _Runner:
    """One job's run: decode, feed the engine, store finals, report progress, meter, cut at quota."""

    def __init__(self, job: FileTranscription) -> None:
        self.job = job
        self.tenant_id = job.tenant_id
        self.session_id = job.session_id
        self.config = SessionConfig.from_dict(job.options)
        self.engine = open_engine_session(self.config, load_models(model_settings_from_django()))
        self.allowance = selectors.tenant_allowance(tenant_id=self.tenant_id, excluding_session_id=self.session_id)
        self.key = LedgerKey.of(self.tenant_id, job.session.started_at)
        self.metered_channels = self.config.metered_channels
        self.granted_s = (job.duration_s or 0.0) * self.metered_channels  # metered s taken at upload, if declared
        self.samples = 0  # per channel
        self.last_report = time.monotonic()

    @property
    def processed_s(self) -> float:
        """Seconds of the file transcribed."""
        return self.samples / TARGET_RATE

    @property
    def metered_s(self) -> float:
        return self.processed_s * self.metered_channels

    def run(self) -> Session.CloseReason:
        """Transcribe the whole file (or up to the quota); the session's close reason."""
        max_s = settings.ASR_FILE_MAX_DURATION_S
        channels = self.config.channels
        with self.job.audio.open("rb") as f:
            for chunk in audiofile.decode(f, max_s=max_s, channels=channels):
                allowed = self._allowed(len(chunk) // channels) * channels
                if allowed < len(chunk):
                    self._feed(chunk[:allowed])
                    self._store(self.engine.finalize("quota"))
                    return Session.CloseReason.QUOTA_EXCEEDED
                self._feed(chunk)
                if time.monotonic() - self.last_report >= PROGRESS_EVERY_S:
                    self._report()
        self._store(self.engine.finalize("stop"))
        return Session.CloseReason.STOP

    def _allowed(self, samples: int) -> int:
        """How many more samples the quota lets in: beyond what was granted, more comes from the
        tenant's ledger a decoded chunk at a time (or from the database's figures without a ledger)."""
        needed_s = (self.samples + samples) / TARGET_RATE * self.metered_channels - self.granted_s
        if needed_s > 0:
            try:
                quota_s = self.allowance.quota_seconds
                self.granted_s += quota.take(self.key, needed_s, quota_s, used_in_db=self._used_in_db)
            except redis.RedisError:
                logger.warning("usage ledger unreachable, cutting on the database's figures job_id=%s", self.job.pk)
                self.granted_s = max(self.granted_s, self.allowance.left_seconds)
        return max(0, min(samples, int(self.granted_s / self.metered_channels * TARGET_RATE) - self.samples))

    def _used_in_db(self) -> float:
        return selectors.usage_seconds_this_month(tenant_id=self.tenant_id, now=self.key.month_start)

    def give_back_unused(self) -> None:
        try:
            quota.give_back(self.key, self.granted_s - self.metered_s)
        except redis.RedisError:
            logger.warning("returning unused quota failed job_id=%s", self.job.pk)

    def _feed(self, chunk: Any) -> None:
        self.samples += len(chunk) // self.config.channels
        self._store(self.engine.accept_audio(chunk.tobytes()))

    def _store(self, events: list) -> None:
        for event in events:
            if event.is_final:
                services.segment_store_final(tenant_id=self.tenant_id, session_id=self.session_id, event=event)

    def _report(self) -> None:
        self.last_report = time.monotonic()
        FileTranscription.objects.filter(pk=self.job.pk).update(processed_s=self.processed_s)
        services.session_meter(tenant_id=self.tenant_id, session_id=self.session_id, audio_seconds=self.metered_s)
        if not selectors.tenant_allowance(tenant_id=self.tenant_id).active:
            raise audiofile.AudioFileError("forbidden", "The account was suspended while the file was transcribed.")


def run_job(job_id: uuid.UUID | str, *, takeover: bool = False) -> None:
    """Run one job to its end; every outcome is written to the job and its session."""
    job = _claim(job_id, takeover=takeover)
    if job is None:
        return
    runner: _Runner | None = None
    close_reason, error = Session.CloseReason.STOP, ("", "")
    try:
        runner = _Runner(job)
        close_reason = runner.run()
        if close_reason == Session.CloseReason.QUOTA_EXCEEDED:
            error = ("quota_exceeded", f"The monthly quota ran out after {runner.processed_s:.1f} s of audio.")
    except audiofile.AudioFileError as exc:
        close_reason = Session.CloseReason.FORBIDDEN if exc.code == "forbidden" else Session.CloseReason.BAD_REQUEST
        error = (exc.code, str(exc))
    except Exception:
        logger.exception("file job failed job_id=%s", job.pk)
        close_reason, error = (
            Session.CloseReason.INTERNAL_ERROR,
            ("internal_error", "The recognizer failed on this file."),
        )
    processed = runner.processed_s if runner else 0.0
    if runner is not None:
        runner.give_back_unused()
    _finish(job, close_reason=close_reason, error=error, processed_s=processed)


def _finish(job: FileTranscription, *, close_reason: str, error: tuple[str, str], processed_s: float) -> None:
    metered_s = processed_s * job.session.channels  # once per channel transcribed
    services.session_finish(
        tenant_id=job.tenant_id, session_id=job.session_id, close_reason=close_reason, audio_seconds=metered_s
    )
    failed = close_reason not in (Session.CloseReason.STOP, Session.CloseReason.QUOTA_EXCEEDED)
    job.status = FileTranscription.Status.FAILED if failed else FileTranscription.Status.DONE
    job.error_code, job.error_message = error[0], error[1][:300]
    job.processed_s = processed_s
    if not failed:
        job.duration_s = processed_s if close_reason == Session.CloseReason.STOP else job.duration_s
    job.finished_at = timezone.now()
    job.audio.delete(save=False)
    job.save()
    logger.info(
        "file job %s job_id=%s tenant_id=%s audio_s=%.1f code=%s",
        job.status,
        job.pk,
        job.tenant_id,
        processed_s,
        error[0] or "-",
    )
