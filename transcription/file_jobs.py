"""File transcription: accept an upload, run it through the streaming engine offline, meter it.

An upload becomes a ``FileTranscription`` job plus a ``file`` Session that receives its finals and
its metered audio seconds, so files share the monthly quota, the usage figures and the transcript
views with live streams. Jobs run on a Celery file worker (``manage.py asr_file_worker``) with
Celery dispatch, or in a small thread pool inside the server in embedded mode; running one is
``file_runner.py``'s.

The same engine as live streams (VAD endpointing, then Whisper per utterance, no partials) gives
files the same segmentation and accuracy as a stream of the same audio. With ``multichannel`` each of
the file's channels is transcribed on its own, as a live multichannel stream's are, and metered once
per channel.
"""

import dataclasses
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from asrplatform import process_state
from transcription import audiofile, quota, selectors, services
from transcription.engine import SessionConfig
from transcription.engine.audio import TARGET_RATE
from transcription.engine.config import NO_DEFAULTS, ConfigError, SessionDefaults, parse_start
from transcription.engine_settings import session_limits
from transcription.file_runner import run_job, stalled
from transcription.models import FileTranscription, Session
from transcription.quota import LedgerKey

logger = logging.getLogger(__name__)

PENDING = (FileTranscription.Status.QUEUED, FileTranscription.Status.RUNNING)
# What a client may set for a file; the rest of the engine config is fixed for offline decoding.
CLIENT_OPTIONS = (
    "language", "model", "word_timestamps", "prompt", "hotwords", "endpointing_ms", "max_utterance_s", "multichannel"
)  # fmt: skip


@dataclass
class JobRefused(Exception):
    """An upload we do not accept; ``status`` is the HTTP status, ``code`` stable for clients."""

    code: str
    message: str
    status: int = 400

    def __str__(self) -> str:
        return self.message


def parse_options(
    options: dict[str, Any], defaults: SessionDefaults = NO_DEFAULTS, *, channels: int = 1
) -> SessionConfig:
    """Validate the client's options exactly as a stream's ``start`` message is validated, over the
    tenant's ``defaults`` as a stream's are.

    ``task`` ("translate" for OpenAI's translations) is the endpoint's choice, checked against the model;
    ``words_when_available`` (Deepgram's, whose results always have words) asks for word timestamps
    if the model chosen gives them. ``channels``: the file's, which a ``multichannel`` job keeps apart."""
    start = {k: v for k, v in options.items() if k in CLIENT_OPTIONS and v is not None}
    channels = channels if start.get("multichannel") is True else 1
    start.update(sample_rate=TARGET_RATE, encoding="pcm_f32le", channels=channels, interim_results=False)
    try:
        config = parse_start(start, session_limits(), task=options.get("task") or "transcribe", defaults=defaults)
    except ConfigError as exc:
        raise JobRefused("bad_request", str(exc)) from exc
    if options.get("words_when_available") and not config.word_timestamps:
        info = next((m for m in session_limits().models if m.name == config.model), None)
        if info is not None and info.word_timestamps:
            config = dataclasses.replace(config, word_timestamps=True)
    return config


def job_create(
    *,
    tenant_id: int,
    api_key_id: int | None,
    upload: UploadedFile,
    options: dict[str, Any],
    protocol: str = Session.Protocol.REST,
) -> FileTranscription:
    """Check and store an upload, create its job and session, and queue it once committed.

    Refuses (JobRefused) files that are too big, not audio, too long, or longer than what is left
    of the tenant's monthly quota; nothing is stored for a refused upload.
    """
    if upload.size is None or upload.size > settings.ASR_FILE_MAX_BYTES:
        raise JobRefused("too_large", f"Files may be at most {settings.ASR_FILE_MAX_BYTES} bytes.", 413)
    allowance = selectors.tenant_allowance(tenant_id=tenant_id)
    config = parse_options(options, allowance.defaults)
    upload.seek(0)
    try:
        info = audiofile.probe(upload)
    except audiofile.AudioFileError as exc:
        raise JobRefused(exc.code, str(exc)) from exc
    if config.multichannel:
        config = parse_options(options, allowance.defaults, channels=info.channels)
    max_s = settings.ASR_FILE_MAX_DURATION_S
    if info.duration_s is not None and info.duration_s > max_s:
        raise JobRefused(
            "too_long", f"The audio lasts {info.duration_s:.0f} s; files may last at most {max_s:g} s.", 413
        )
    key = LedgerKey.of(tenant_id, timezone.now())
    declared_s = None if info.duration_s is None else info.duration_s * config.metered_channels
    reserved_s = _reserve(key, allowance, declared_s)
    try:
        job = _create(
            tenant_id=tenant_id, api_key_id=api_key_id, upload=upload, config=config, info=info, protocol=protocol
        )
    except BaseException:
        quota.give_back(key, reserved_s)
        raise
    logger.info("file job queued job_id=%s tenant_id=%s bytes=%d", job.id, tenant_id, job.size_bytes)
    return job


def _reserve(key: LedgerKey, allowance: selectors.TenantAllowance, declared_s: float | None) -> float:
    """Take a file's declared duration from the tenant's month now, so concurrent uploads cannot all
    fit in the same seconds; a file that declares none is cut at the quota as it is decoded."""

    def used_in_db() -> float:
        return selectors.usage_seconds_this_month(tenant_id=key.tenant_id, now=key.month_start)

    try:
        left_s = quota.left(key, allowance.quota_seconds, used_in_db=used_in_db)
        reserved_s = 0.0
        if declared_s and left_s >= declared_s:
            reserved_s = quota.take(key, declared_s, allowance.quota_seconds, used_in_db=used_in_db, whole=True)
            left_s = left_s if reserved_s else 0.0  # another upload took the seconds first
    except redis.RedisError:
        logger.warning("usage ledger unreachable, checking the upload on the database's figures", exc_info=True)
        left_s, reserved_s = allowance.left_seconds, 0.0
    if left_s <= 0:
        raise JobRefused("quota_exceeded", f"This month's audio quota ({allowance.quota_seconds:g} s) is used up.", 429)
    if declared_s is not None and declared_s > left_s:
        message = f"The audio lasts {declared_s:.1f} s but only {left_s:.1f} s of this month's quota are left."
        raise JobRefused("quota_exceeded", message, 429)
    return reserved_s


def _create(
    *,
    tenant_id: int,
    api_key_id: int | None,
    upload: UploadedFile,
    config: SessionConfig,
    info: audiofile.AudioFileInfo,
    protocol: str,
) -> FileTranscription:
    """Store the upload as a queued job with its session, unless the tenant has too many queued."""
    upload.seek(0)
    with transaction.atomic():
        Tenant.objects.select_for_update().get(pk=tenant_id)  # one upload of a tenant counts at a time
        pending = FileTranscription.objects.filter(tenant_id=tenant_id, status__in=PENDING).count()
        if pending >= settings.ASR_MAX_QUEUED_FILE_JOBS:
            cap = settings.ASR_MAX_QUEUED_FILE_JOBS
            message = f"At most {cap} files may be queued or running at once; wait for some to finish."
            raise JobRefused("too_many_jobs", message, 429)
        session = services.session_start(
            tenant_id=tenant_id,
            api_key_id=api_key_id,
            source=Session.Source.FILE,
            protocol=protocol,
            language=config.language,
            engine=config.model or settings.ASR_MODEL,
            sample_rate=info.sample_rate,
            channels=config.metered_channels,
        )
        job = FileTranscription(
            id=session.id,
            tenant_id=tenant_id,
            api_key_id=api_key_id,
            session=session,
            filename=(upload.name or "")[-255:],
            size_bytes=upload.size or 0,
            format=info.format[:40],
            duration_s=info.duration_s,
            options=config.to_dict(),
        )
        job.audio.save(f"{job.id}.upload", upload, save=False)  # never the client's file name on disk
        job.save()
        transaction.on_commit(lambda: enqueue(job.id))
    return job


# --- running a job ---------------------------------------------------------------------------


def _local_executor() -> ThreadPoolExecutor:
    def build() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(settings.ASR_FILE_LOCAL_WORKERS, thread_name_prefix="asr-file")

    return process_state.get(("file_jobs.executor",), build, close=lambda pool: pool.shutdown(wait=False))


def enqueue(job_id: uuid.UUID) -> None:
    """Hand a committed job to a Celery file worker, or to this process's file threads."""
    if settings.ASR_DISPATCH == "celery":
        from asrplatform.celery import app  # our configured app, not Celery's default one

        app.send_task("asr.transcribe_file", args=[str(job_id)], queue=settings.ASR_FILE_QUEUE, ignore_result=True)
        return
    _local_executor().submit(_run_logged, job_id)


def resume_local_jobs() -> int:
    """Embedded mode, at start-up: queue again the jobs a previous server process left unfinished."""
    pending = FileTranscription.objects.filter(status__in=PENDING)
    ids = list(pending.values_list("id", flat=True))
    for job_id in ids:
        _local_executor().submit(_run_logged, job_id, takeover=True)  # whoever ran them is gone
    if ids:
        logger.info("resuming %d unfinished file jobs", len(ids))
    return len(ids)


def requeue_stalled(*, older_than_s: float | None = None) -> int:
    """Celery mode: queue again the running jobs whose worker stopped reporting (killed, host lost).

    Cross-tenant on purpose: a system job (the servers' sweeper). A job's message is acknowledged
    only when it ends, but Redis hands an unacknowledged one to another worker only after the
    visibility timeout (hours, so long jobs are not run twice); a job reports progress, and with it
    its session's heartbeat, every second, so one silent for ``ASR_FILE_JOB_STALE_S`` has no worker.
    """
    if settings.ASR_DISPATCH != "celery":
        return 0
    ids = list(stalled(older_than_s).values_list("id", flat=True))
    for job_id in ids:
        logger.warning("file job stalled, queued again job_id=%s", job_id)
        enqueue(job_id)
    return len(ids)


def _run_logged(job_id: uuid.UUID, *, takeover: bool = False) -> None:
    try:
        run_job(job_id, takeover=takeover)
    except Exception:  # a thread pool would swallow it silently
        logger.exception("file job crashed job_id=%s", job_id)
