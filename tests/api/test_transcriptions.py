"""File transcription over the REST API: real uploads in every supported format, the real engine,
metering against the monthly quota, clear refusals, tenant isolation, and Celery file workers."""

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from bench.evaluation import load_manifest, word_error_rate
from bench.server import stop_process
from tests.support.containers import FORMATS, encode
from tests.support.paths import REPO, artifacts
from tests.support.servers import child_env, gateway_server
from transcription import audiofile, file_jobs, selectors
from transcription.models import FileTranscription, Session

JFK_S = 11.0


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test's uploads in a folder of its own, so 'nothing left behind' is this test's claim."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture(scope="module")
def jfk(eval_dir):
    entry = next(e for e in load_manifest(eval_dir / "real") if e.audio_path.name == "jfk.wav")
    samples, rate = np.concatenate(list(audiofile.decode(entry.audio_path))), audiofile.TARGET_RATE
    return entry, samples, rate


def upload(client: APIClient, data: bytes, name: str = "clip.bin", **fields):
    return client.post(
        reverse("api-transcriptions"), {"file": SimpleUploadedFile(name, data), **fields}, format="multipart"
    )


def wait_done(client: APIClient, job_id: str, timeout: float = 120.0) -> dict:
    """Poll the job as a client does, checking progress only ever moves forward."""
    deadline, last_progress = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        body = client.get(reverse("api-transcription-detail", kwargs={"id": job_id})).json()
        assert body["progress"] >= last_progress
        last_progress = body["progress"]
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def stored_uploads() -> list[str]:
    return [str(p) for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_is_transcribed_metered_and_its_upload_deleted(fmt, jfk, tenant_a):
    entry, samples, rate = jfk
    client = key_client(tenant_a.raw_key)
    response = upload(client, encode(samples, rate, fmt), name=f"jfk.{fmt}", language="en")
    assert response.status_code == 202, response.content
    created = response.json()
    assert created["status"] in ("queued", "running") and response["Location"].endswith(created["id"])

    body = wait_done(client, created["id"])

    assert body["status"] == "done" and body["error"] is None and body["progress"] == 1.0
    text = " ".join(s["text"] for s in body["segments"])
    assert word_error_rate([entry.text], [text]) <= 0.15, text
    assert body["duration_s"] == pytest.approx(JFK_S, abs=0.05)
    session = Session.objects.get(pk=body["session_id"])
    assert session.source == "file" and session.status == "closed" and session.close_reason == "stop"
    assert session.audio_seconds == pytest.approx(JFK_S, abs=0.05)  # metered like a stream
    assert selectors.usage_seconds_this_month(tenant_id=tenant_a.tenant.pk) == pytest.approx(JFK_S, abs=0.05)
    assert not stored_uploads()  # customer audio is not kept once transcribed


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["awful.wav", "bad.wav", "evil.wav", "null.wav"])
def test_malformed_files_are_refused_with_a_reason_and_nothing_stored(name, eval_dir, tenant_a):
    response = upload(key_client(tenant_a.raw_key), (eval_dir / "bad" / name).read_bytes(), name=name)
    assert response.status_code == 400
    assert response.json()["code"] in ("bad_audio", "no_audio") and response.json()["detail"]
    assert not FileTranscription.objects.exists() and not Session.objects.exists()
    assert not stored_uploads()


@pytest.mark.django_db
def test_a_file_that_is_not_audio_is_refused(tenant_a):
    response = upload(key_client(tenant_a.raw_key), b"%PDF-1.7\n" + os.urandom(4000), name="report.pdf")
    assert response.status_code == 400 and response.json()["code"] in ("bad_audio", "unsupported_format")


@pytest.mark.django_db
def test_size_and_duration_limits(jfk, tenant_a, settings):
    _, samples, rate = jfk
    flac = encode(samples, rate, "flac")
    client = key_client(tenant_a.raw_key)
    settings.ASR_FILE_MAX_BYTES = len(flac) - 1
    response = upload(client, flac)
    assert response.status_code == 413 and response.json()["code"] == "too_large"

    settings.ASR_FILE_MAX_BYTES, settings.ASR_FILE_MAX_DURATION_S = 10**9, 5
    response = upload(client, flac)
    assert response.status_code == 413 and response.json()["code"] == "too_long"
    assert "at most 5 s" in response.json()["detail"]
    assert not FileTranscription.objects.exists() and not stored_uploads()


@pytest.mark.django_db
def test_a_body_declared_too_large_is_refused_before_it_is_read(tenant_a, settings):
    settings.ASR_FILE_MAX_BYTES = 1000
    client = key_client(tenant_a.raw_key)
    response = client.post(
        reverse("api-transcriptions"),
        data=b"x",
        content_type="multipart/form-data; boundary=b",
        CONTENT_LENGTH="9999999",
    )
    assert response.status_code == 413 and response.json()["code"] == "too_large"


@pytest.mark.django_db
def test_bad_options_and_non_multipart_bodies_are_refused(jfk, tenant_a):
    _, samples, rate = jfk
    client = key_client(tenant_a.raw_key)
    response = upload(client, encode(samples, rate, "flac"), language="xx")
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    assert "Language 'xx'" in response.json()["detail"]
    assert client.post(reverse("api-transcriptions"), {"x": 1}, format="json").status_code == 415
    assert client.post(reverse("api-transcriptions"), {}, format="multipart").status_code == 400


@pytest.mark.django_db
def test_upload_longer_than_the_quota_left_is_refused(jfk, tenant_a):
    _, samples, rate = jfk
    tenant_a.tenant.monthly_audio_seconds_quota = 10  # jfk lasts 11 s
    tenant_a.tenant.save()
    response = upload(key_client(tenant_a.raw_key), encode(samples, rate, "flac"))
    assert response.status_code == 429 and response.json()["code"] == "quota_exceeded"
    assert "10.0 s" in response.json()["detail"] and not Session.objects.exists()


@pytest.mark.django_db
def test_quota_that_runs_out_while_the_job_waits_cuts_it_exactly(jfk, tenant_a):
    """A file without a duration in its header reserves nothing at upload; the quota shrank before it
    ran: the job transcribes what is left, exactly."""
    _, samples, rate = jfk
    upload_file = SimpleUploadedFile("jfk.webm", encode(samples, rate, "webm", streamed=True))
    job = file_jobs.job_create(tenant_id=tenant_a.tenant.pk, api_key_id=None, upload=upload_file, options={})
    tenant_a.tenant.monthly_audio_seconds_quota = 4  # (on_commit never fires inside this test's transaction)
    tenant_a.tenant.save()

    file_jobs.run_job(job.id)

    job.refresh_from_db()
    assert job.status == "done" and job.error_code == "quota_exceeded"
    assert job.session.audio_seconds == pytest.approx(4.0, abs=1e-6)
    assert job.session.close_reason == "quota_exceeded"
    segments = list(job.session.segments.all())
    assert segments and all(s.end <= 4.0 + 1e-6 for s in segments)
    assert "fellow americans" in " ".join(s.text.lower() for s in segments)  # the first words were kept


@pytest.mark.django_db
def test_concurrent_uploads_reserve_their_declared_duration(jfk, tenant_a):
    """Three 11 s files on a 25 s quota, none run yet: the third no longer fits."""
    _, samples, rate = jfk
    tenant_a.tenant.monthly_audio_seconds_quota = 25
    tenant_a.tenant.save()
    client = key_client(tenant_a.raw_key)
    statuses = [upload(client, encode(samples, rate, "flac")).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]


@pytest.mark.django_db(transaction=True)
def test_files_without_a_declared_duration_running_at_once_stay_within_the_quota(jfk, tenant_a, monkeypatch):
    """Undeclared durations are taken from the quota as they are decoded, by every job at once."""
    _, samples, rate = jfk
    monkeypatch.setattr(file_jobs, "enqueue", lambda job_id: None)  # this test runs the jobs itself, at once
    tenant_a.tenant.monthly_audio_seconds_quota = 25
    tenant_a.tenant.save()
    data = encode(samples, rate, "webm", streamed=True)
    jobs = [
        file_jobs.job_create(
            tenant_id=tenant_a.tenant.pk, api_key_id=None, upload=SimpleUploadedFile("a.webm", data), options={}
        )
        for _ in range(3)
    ]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(file_jobs.run_job, [job.id for job in jobs]))
    processed = [FileTranscription.objects.get(pk=job.pk).processed_s for job in jobs]
    assert sum(processed) == pytest.approx(25.0, abs=0.01)
    assert selectors.usage_seconds_this_month(tenant_id=tenant_a.tenant.pk) == pytest.approx(25.0, abs=0.01)


@pytest.mark.django_db
def test_a_tenants_queued_jobs_are_capped(jfk, tenant_a, settings):
    settings.ASR_MAX_QUEUED_FILE_JOBS = 2
    _, samples, rate = jfk
    data = encode(samples, rate, "flac")
    client = key_client(tenant_a.raw_key)
    assert [upload(client, data).status_code for _ in range(2)] == [202, 202]
    refused = upload(client, data)
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_jobs"
    file_jobs.run_job(FileTranscription.objects.filter(tenant=tenant_a.tenant).first().pk)
    assert upload(client, data).status_code == 202  # one finished: room again


@pytest.mark.django_db
def test_jobs_of_another_tenant_are_invisible(jfk, tenant_a, tenant_b):
    _, samples, rate = jfk
    job = file_jobs.job_create(
        tenant_id=tenant_a.tenant.pk,
        api_key_id=None,
        upload=SimpleUploadedFile("a.flac", encode(samples, rate, "flac")),
        options={},
    )
    b = key_client(tenant_b.raw_key)
    assert b.get(reverse("api-transcription-detail", kwargs={"id": job.pk})).status_code == 404
    assert b.get(reverse("api-transcriptions")).json()["count"] == 0
    a = key_client(tenant_a.raw_key)
    assert [j["id"] for j in a.get(reverse("api-transcriptions")).json()["results"]] == [str(job.pk)]
    assert a.get(reverse("api-transcription-detail", kwargs={"id": uuid.uuid4()})).status_code == 404


# --- Celery: a real file worker process -------------------------------------------------------


@contextlib.contextmanager
def file_worker_process(settings, log_name: str = "file-worker.log") -> Iterator[subprocess.Popen]:
    """``manage.py asr_file_worker`` on this test's queue (ASR_FILE_QUEUE), against its database."""
    env = child_env(
        ASR_DISPATCH="celery",
        ASR_FILE_QUEUE=settings.ASR_FILE_QUEUE,
        ASR_FILE_JOB_STALE_S=str(settings.ASR_FILE_JOB_STALE_S),
        ASR_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        ASR_PRELOAD="0",
    )
    with open(artifacts() / log_name, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "asr_file_worker", "--loglevel", "INFO"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop_process(process, timeout=30)


@pytest.fixture
def file_queue(settings) -> str:
    """Celery dispatch, with file jobs on a queue of this test's own."""
    settings.ASR_DISPATCH, settings.ASR_FILE_QUEUE = "celery", f"asrtest-files-{uuid.uuid4().hex[:8]}"
    return settings.ASR_FILE_QUEUE


@pytest.fixture
def file_worker(settings, file_queue):
    with file_worker_process(settings) as process:
        yield process


@pytest.mark.django_db(transaction=True)
def test_celery_file_worker_runs_the_job(file_worker, jfk, tenant_a):
    entry, samples, rate = jfk
    client = key_client(tenant_a.raw_key)
    response = upload(client, encode(samples, rate, "ogg"), name="jfk.ogg")
    assert response.status_code == 202

    body = wait_done(client, response.json()["id"], timeout=180)

    assert file_worker.poll() is None
    assert body["status"] == "done"
    assert word_error_rate([entry.text], [" ".join(s["text"] for s in body["segments"])]) <= 0.15
    assert Session.objects.get(pk=body["session_id"]).audio_seconds == pytest.approx(JFK_S, abs=0.05)
    assert not stored_uploads()


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_is_run_again_by_another_worker(file_queue, jfk, tenant_a, settings):
    """Redis would hand the unacknowledged job to another worker only after hours; the sweeper sees
    the job's heartbeat stop and queues it again, and the second worker runs it whole, once."""
    entry, samples, rate = jfk
    settings.ASR_FILE_JOB_STALE_S = 3.0
    repeats = 5
    response = upload(key_client(tenant_a.raw_key), encode(np.concatenate([samples] * repeats), rate, "ogg"))
    assert response.status_code == 202
    job_id = response.json()["id"]
    with file_worker_process(settings, "file-worker-killed.log") as first:
        deadline = time.monotonic() + 120
        while FileTranscription.objects.get(pk=job_id).processed_s < 10:
            assert time.monotonic() < deadline, "the first worker never got going"
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert file_jobs.requeue_stalled() == 0  # not yet: it reported progress a moment ago
    time.sleep(settings.ASR_FILE_JOB_STALE_S + 1)
    with file_worker_process(settings, "file-worker-second.log"):
        assert file_jobs.requeue_stalled() == 1
        deadline = time.monotonic() + 240
        while (job := FileTranscription.objects.get(pk=job_id)).status not in ("done", "failed"):
            assert time.monotonic() < deadline, f"the job did not finish: {job.status} {job.processed_s}"
            time.sleep(0.5)
    assert job.status == "done" and job.processed_s == pytest.approx(JFK_S * repeats, abs=0.1)
    segments = list(job.session.segments.order_by("index"))
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(a.end <= b.start + 0.05 for a, b in zip(segments, segments[1:], strict=False))  # none twice
    assert word_error_rate([" ".join([entry.text] * repeats)], [" ".join(s.text for s in segments)]) <= 0.15
    assert job.session.audio_seconds == pytest.approx(JFK_S * repeats, abs=0.1)


def test_decoder_reads_file_objects_like_paths(jfk):
    """Uploads and storage files reach PyAV as open files; both give the same samples."""
    entry, samples, rate = jfk
    from_path = sum(len(c) for c in audiofile.decode(entry.audio_path))
    from_file = sum(len(c) for c in audiofile.decode(io.BytesIO(entry.audio_path.read_bytes())))
    assert from_path == from_file == int(JFK_S * 16000)
    with pytest.raises(audiofile.AudioFileError) as exc:
        list(audiofile.decode(entry.audio_path, max_s=3))
    assert exc.value.code == "too_long"


@pytest.mark.django_db(transaction=True)
def test_embedded_server_resumes_jobs_left_unfinished(settings, jfk, tenant_a):
    """A job queued when its server went away is run by the next embedded server to start."""
    import redis

    _, samples, rate = jfk
    dead_queue = f"asrtest-nobody-{uuid.uuid4().hex[:8]}"  # no worker consumes it: the job stays queued
    settings.ASR_DISPATCH, settings.ASR_FILE_QUEUE = "celery", dead_queue
    response = upload(key_client(tenant_a.raw_key), encode(samples, rate, "mp3"), name="jfk.mp3")
    assert response.status_code == 202
    job_id = response.json()["id"]
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(dead_queue)
    assert FileTranscription.objects.get(pk=job_id).status == "queued"

    with gateway_server(extra_env={"ASR_MEDIA_ROOT": str(settings.MEDIA_ROOT), "ASR_DISPATCH": "local"}):
        deadline = time.monotonic() + 120
        while FileTranscription.objects.get(pk=job_id).status in ("queued", "running"):
            assert time.monotonic() < deadline, "the restarted server did not run the job"
            time.sleep(0.3)
    job = FileTranscription.objects.get(pk=job_id)
    assert job.status == "done" and job.session.segments.exists() and not stored_uploads()
