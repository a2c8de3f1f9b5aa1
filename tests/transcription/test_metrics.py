"""/metrics: Prometheus text, only with the scrape token or for staff; figures from the database."""

import os
import subprocess
import sys
import threading
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.support.paths import REPO
from tests.support.servers import gateway_server
from transcription import metrics
from transcription import services as transcription_services

pytestmark = pytest.mark.django_db


def stored(tenant, *, seconds: float, reason: str | None):
    session = transcription_services.session_start(
        tenant_id=tenant.pk, api_key_id=None, language="en", engine="test", sample_rate=16000
    )
    if reason:
        transcription_services.session_finish(
            tenant_id=tenant.pk, session_id=session.id, close_reason=reason, audio_seconds=seconds
        )
    return session


def sample(body: str, name: str) -> float:
    line = next(line for line in body.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_refused_without_token_or_staff(tenant_a, settings):
    settings.ASR_METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {tenant_a.raw_key}").status_code == 403
    member = get_user_model().objects.create_user(username="m", password="pw-123456-long")
    client = Client()
    client.force_login(member)
    assert client.get("/metrics").status_code == 403


def test_no_token_configured_means_staff_only(settings):
    settings.ASR_METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403
    staff = get_user_model().objects.create_user(username="s", password="pw-123456-long", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200


def test_metrics_report_live_sessions_audio_and_closes_by_reason(tenant_a, tenant_b, settings):
    settings.ASR_METRICS_TOKEN = "scrape-secret"
    stored(tenant_a.tenant, seconds=0, reason=None)
    stored(tenant_a.tenant, seconds=12.5, reason="stop")
    stored(tenant_b.tenant, seconds=2.5, reason="quota_exceeded")
    metrics.observe_final_latency(0.3)
    metrics.count_error("quota_exceeded")
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert sample(body, "asr_live_sessions") == 1
    assert sample(body, "asr_audio_seconds_total") == pytest.approx(15.0)
    assert 'asr_sessions_closed_total{reason="quota_exceeded"} 1.0' in body
    assert 'asr_sessions_closed_total{reason="stop"} 1.0' in body
    assert "asr_final_latency_seconds_bucket" in body and sample(body, "asr_final_latency_seconds_count") >= 1
    assert 'asr_errors_total{code="quota_exceeded"}' in body


def scrape(settings) -> str:
    settings.ASR_METRICS_TOKEN = "scrape-secret"
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert response.status_code == 200
    return response.content.decode()


def test_embedded_mode_reports_calls_waiting_for_an_engine_thread(settings):
    from transcription.dispatch import get_dispatcher

    settings.ASR_DISPATCH = "local"
    pool = get_dispatcher().scheduler
    started, release = threading.Semaphore(0), threading.Event()

    def occupy() -> None:
        started.release()
        release.wait(30)

    busy, waiting = [pool.submit(occupy) for _ in pool.workers], []  # decode threads and the intake lane
    try:
        for _ in busy:
            assert started.acquire(timeout=10)  # every engine thread is taken
        assert sample(scrape(settings), "asr_local_pool_queue_depth") == 0
        waiting += [pool.submit(occupy) for _ in range(3)]
        assert sample(scrape(settings), "asr_local_pool_queue_depth") == 3
    finally:
        release.set()
    for future in busy + waiting:
        future.result(timeout=10)
    assert sample(scrape(settings), "asr_local_pool_queue_depth") == 0
    assert "asr_worker_queue_depth" not in scrape(settings)


def test_an_unreachable_worker_registry_leaves_the_other_metrics_served(settings):
    from tests.support.servers import free_port

    settings.ASR_DISPATCH = "celery"
    settings.ASR_REGISTRY_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    body = scrape(settings)
    assert "asr_live_sessions " in body and "asr_worker_queue_depth" not in body


def record_in_a_process_of_its_own(env: dict[str, str], latency_s: float) -> None:
    code = (
        "from transcription import instruments; "
        f"instruments.observe_final_latency({latency_s}); instruments.count_error('quota_exceeded')"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=60)


def test_multiprocess_mode_sums_the_samples_of_every_process_once(django_db_setup, tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    record_in_a_process_of_its_own(env, 0.3)
    record_in_a_process_of_its_own(env, 2.0)
    server_env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "ASR_METRICS_TOKEN": "scrape-secret"}
    with gateway_server(extra_env={**server_env, "ASR_PRELOAD": "0", "REDIS_URL": ""}) as server:
        request = urllib.request.Request(
            f"{server.http_url}/metrics", headers={"Authorization": "Bearer scrape-secret"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read().decode()
    assert sample(body, "asr_final_latency_seconds_count") == 2
    assert sample(body, "asr_final_latency_seconds_sum") == pytest.approx(2.3)
    assert 'asr_final_latency_seconds_bucket{le="0.5"} 1.0' in body
    assert 'asr_errors_total{code="quota_exceeded"} 2.0' in body
    for name in ("asr_final_latency_seconds_count", "asr_live_sessions", "asr_local_pool_queue_depth"):
        assert sum(line.startswith(name + " ") for line in body.splitlines()) == 1, name  # each figure once
