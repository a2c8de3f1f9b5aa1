"""Sessions a killed server left open are closed as ``lost``; sessions someone still looks after are not."""

import asyncio
import json
import signal
import threading
import time
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from websockets.asyncio.client import connect

from bench.evaluation import word_error_rate
from tests.support.audio import clip, silence, to_s16
from tests.support.servers import gateway_server, running_in_thread
from tests.support.tenants import make_tenant
from tests.support.ws import receive_until
from transcription import services, sweeper
from transcription.engine import TranscriptEvent
from transcription.models import Session

LOST = Session.CloseReason.LOST


def _start(tenant_id: int, **extra) -> Session:
    return services.session_start(
        tenant_id=tenant_id, api_key_id=None, language="en", engine="whisper", sample_rate=16000, **extra
    )


def _in(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def _sweep_in(seconds: float, older_than_s: float = 60) -> int:
    """Sweep as if ``seconds`` had passed."""
    return services.session_sweep_stale(older_than_s=older_than_s, now=_in(seconds))


@pytest.mark.django_db
def test_a_stream_not_seen_for_longer_than_the_threshold_is_closed_as_lost_with_its_metered_audio(tenant_a):
    session = _start(tenant_a.tenant.pk)
    services.session_meter(tenant_id=tenant_a.tenant.pk, session_id=session.pk, audio_seconds=12.5)

    assert _sweep_in(61) == 1

    session.refresh_from_db()
    assert (session.status, session.close_reason) == (Session.Status.CLOSED, LOST)
    assert session.audio_seconds == 12.5
    assert session.ended_at is not None


@pytest.mark.django_db
def test_a_stream_seen_within_the_threshold_is_left_alone(tenant_a):
    session = _start(tenant_a.tenant.pk)

    assert _sweep_in(59) == 0

    session.refresh_from_db()
    assert session.status == Session.Status.ACTIVE and session.close_reason == ""


@pytest.mark.django_db
def test_metering_refreshes_the_heartbeat(tenant_a):
    session = _start(tenant_a.tenant.pk)
    long_ago = timezone.now() - timedelta(hours=1)
    Session.objects.filter(pk=session.pk).update(last_seen_at=long_ago)

    services.session_meter(tenant_id=tenant_a.tenant.pk, session_id=session.pk, audio_seconds=3.0)

    session.refresh_from_db()
    assert session.last_seen_at > timezone.now() - timedelta(seconds=5)
    assert services.session_sweep_stale(older_than_s=60) == 0


@pytest.mark.django_db
def test_interrupting_and_resuming_refresh_the_heartbeat(tenant_a):
    tenant_id = tenant_a.tenant.pk
    session = _start(tenant_id, resume_token_hash="a" * 64)
    long_ago = timezone.now() - timedelta(hours=1)

    Session.objects.filter(pk=session.pk).update(last_seen_at=long_ago)
    services.session_interrupt(tenant_id=tenant_id, session_id=session.pk, audio_seconds=2.0)
    session.refresh_from_db()
    assert session.last_seen_at > long_ago

    Session.objects.filter(pk=session.pk).update(last_seen_at=long_ago)
    assert services.session_resume_claim(
        tenant_id=tenant_id, session_id=session.pk, presented_token_hash="a" * 64, new_token_hash="b" * 64
    )
    session.refresh_from_db()
    assert session.last_seen_at > long_ago

    Session.objects.filter(pk=session.pk).update(last_seen_at=long_ago)
    services.session_resume(tenant_id=tenant_id, session_id=session.pk, resume_token_hash="b" * 64)
    session.refresh_from_db()
    assert session.last_seen_at > long_ago and session.status == Session.Status.ACTIVE


@pytest.mark.django_db
def test_an_interrupted_stream_is_left_alone_within_the_resume_grace_and_closed_past_it(tenant_a, settings):
    settings.ASR_RESUME_GRACE_S = 30
    session = _start(tenant_a.tenant.pk)
    services.session_interrupt(tenant_id=tenant_a.tenant.pk, session_id=session.pk, audio_seconds=7.0)

    assert _sweep_in(20, older_than_s=10) == 0
    session.refresh_from_db()
    assert session.status == Session.Status.INTERRUPTED

    assert _sweep_in(31, older_than_s=10) == 1
    session.refresh_from_db()
    assert (session.status, session.close_reason, session.audio_seconds) == (Session.Status.CLOSED, LOST, 7.0)


@pytest.mark.django_db
def test_file_sessions_are_left_to_their_job(tenant_a):
    session = _start(tenant_a.tenant.pk, source=Session.Source.FILE)

    assert _sweep_in(3600) == 0

    session.refresh_from_db()
    assert session.status == Session.Status.ACTIVE


@pytest.mark.django_db
def test_closed_sessions_are_unchanged(tenant_a):
    session = services.session_finish(
        tenant_id=tenant_a.tenant.pk, session_id=_start(tenant_a.tenant.pk).pk, close_reason="stop", audio_seconds=5.0
    )

    assert _sweep_in(3600) == 0

    again = Session.objects.get(pk=session.pk)
    assert (again.close_reason, again.audio_seconds, again.ended_at) == ("stop", 5.0, session.ended_at)


@pytest.mark.django_db
def test_the_sweep_covers_every_tenant_and_closes_each_session_once(tenant_a, tenant_b):
    first, second = _start(tenant_a.tenant.pk), _start(tenant_b.tenant.pk)

    assert _sweep_in(61) == 2
    assert _sweep_in(61) == 0

    assert set(Session.objects.filter(pk__in=[first.pk, second.pk]).values_list("close_reason", flat=True)) == {LOST}


@pytest.mark.django_db
def test_a_final_stored_after_the_sweep_is_kept(tenant_a):
    """A worker's orphan path may store the open utterance of a session already swept."""
    session = _start(tenant_a.tenant.pk)
    _sweep_in(61)

    event = TranscriptEvent(0, "the last words", 0.0, 1.5, is_final=True, reason="disconnect")
    services.segment_store_final(tenant_id=tenant_a.tenant.pk, session_id=session.pk, event=event)

    assert list(session.segments.values_list("text", flat=True)) == ["the last words"]


@pytest.mark.django_db(transaction=True)
def test_a_row_being_closed_elsewhere_is_left_to_that_closer(tenant_a):
    """Another sweeper (or the gateway's own finish) holds the row: this sweep skips it, never waits."""
    session = _start(tenant_a.tenant.pk)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Session.objects.select_for_update().get(pk=session.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(10)
        assert _sweep_in(61) == 0
    finally:
        release.set()
        holder.join()
    assert _sweep_in(61) == 1


def test_the_threshold_stays_above_what_a_live_owner_needs(settings):
    settings.ASR_DISPATCH = "local"
    settings.ASR_USAGE_FLUSH_S, settings.ASR_RESUME_GRACE_S = 5, 30
    settings.ASR_SESSION_STALE_S = 60
    assert sweeper.stale_after_s() == 60
    settings.ASR_SESSION_STALE_S = 1  # below a flush: live sessions would be swept
    assert sweeper.stale_after_s() == 2 * 5 + 30

    # A Celery worker still holding a killed gateway's session stores its open utterance and closes it first.
    settings.ASR_DISPATCH = "celery"
    settings.ASR_WORKER_SESSION_IDLE_S, settings.ASR_FINISH_TIMEOUT_S = 120, 60
    assert sweeper.stale_after_s() == 2 * 5 + 30 + 120 + 60


@pytest.mark.django_db
def test_the_sweep_command_closes_lost_sessions(tenant_a, capsys, settings):
    settings.ASR_USAGE_FLUSH_S = 0.05  # it waits two flushes before sweeping
    session = _start(tenant_a.tenant.pk)
    Session.objects.filter(pk=session.pk).update(last_seen_at=timezone.now() - timedelta(hours=1))

    call_command("asr_sweep")

    assert "1 lost session" in capsys.readouterr().out
    assert Session.objects.get(pk=session.pk).close_reason == LOST


@pytest.mark.django_db(transaction=True)
async def test_a_server_sweeps_from_its_start_to_its_shutdown_once_the_database_answered_a_round(tenant_a, settings):
    """The first round only reaches the database: live gateways may not have refreshed their rows yet."""
    settings.ASR_USAGE_FLUSH_S, settings.ASR_RESUME_GRACE_S, settings.ASR_SESSION_STALE_S = 0.25, 0, 1
    session = await asyncio.to_thread(_start, tenant_a.tenant.pk)
    await Session.objects.filter(pk=session.pk).aupdate(last_seen_at=timezone.now() - timedelta(hours=1))
    to_app, from_app = asyncio.Queue(), asyncio.Queue()
    app = asyncio.create_task(sweeper.lifespan({"type": "lifespan"}, to_app.get, from_app.put))

    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    await asyncio.sleep(0.2)  # the first round is done, the second is 0.5 s away
    assert (await Session.objects.aget(pk=session.pk)).status == Session.Status.ACTIVE
    closed = await wait_for_close(str(session.pk), timeout=10)
    await to_app.put({"type": "lifespan.shutdown"})
    assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
    await app

    assert closed.close_reason == LOST


# --- end to end: a real server killed with SIGKILL ---------------------------------------------

# Both servers: a flush every 0.5 s, lost after 3 s without one, swept every 0.75 s.
FAST_SWEEP = {"ASR_USAGE_FLUSH_S": "0.5", "ASR_RESUME_GRACE_S": "1", "ASR_SESSION_STALE_S": "3"}


async def wait_for_close(session_id: str, timeout: float = 30) -> Session:
    deadline = time.monotonic() + timeout
    while True:
        session = await Session.objects.aget(pk=session_id)
        if session.status == Session.Status.CLOSED or time.monotonic() > deadline:
            return session
        await asyncio.sleep(0.25)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
async def test_a_killed_servers_session_is_closed_as_lost_by_another_server_with_its_finals_intact(eval_dir):
    key = (await asyncio.to_thread(make_tenant, "sweep")).raw_key
    headers = {"Authorization": f"Bearer {key}"}
    first, gap, second = clip(eval_dir, "cards-001.wav"), silence(1.5), clip(eval_dir, "goforward.wav")
    pcm = to_s16(np.concatenate([first, gap, second[: len(second) // 2]]))  # killed mid "go forward"

    async with running_in_thread(gateway_server(extra_env=FAST_SWEEP)) as server:
        async with connect(server.url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "start", "interim_results": False}))
            ready = (await receive_until(ws, "ready"))[-1]
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
            before = [m for m in await receive_until(ws, "final") if m["type"] == "final"]
            # Past the threshold, the serving server's own sweeper leaves its live session alone.
            await asyncio.sleep(4)
            assert (await Session.objects.aget(pk=ready["session_id"])).status == Session.Status.ACTIVE
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()

    assert (await Session.objects.aget(pk=ready["session_id"])).status == Session.Status.ACTIVE
    async with running_in_thread(gateway_server(extra_env=FAST_SWEEP)):
        session = await wait_for_close(ready["session_id"])

    assert (session.status, session.close_reason) == (Session.Status.CLOSED, LOST)
    assert session.audio_seconds == pytest.approx(len(pcm) / 2 / 16000, abs=0.01)
    stored = [s async for s in session.segments.order_by("index")]
    assert [s.index for s in stored] == [f["segment"] for f in before] == [0]
    assert stored[0].text == before[0]["text"]
    assert word_error_rate(["ten of clubs"], [stored[0].text]) == 0.0


def test_the_queues_killed_workers_left_in_redis_are_deleted_on_the_second_round(settings):
    """A live worker's queue is kept; a queue without a worker goes, after being seen twice."""
    import redis

    from transcription.runner import registry

    settings.ASR_DISPATCH = "celery"
    settings.ASR_REGISTRY_URL = "redis://127.0.0.1:6379/0"
    settings.ASR_REDIS_PREFIX = prefix = f"asrtest-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.ASR_REGISTRY_URL)
    live = registry.WorkerInfo(
        id="alive",
        queue=registry.worker_queue(prefix, "alive"),
        capacity=4,
        device="cpu",
        model="tiny.en",
        host="test",
        pid=0,
        beat_at=time.time(),
    )
    dead_queue = registry.worker_queue(prefix, "killed")
    try:
        client.set(registry.worker_key(prefix, live.id), registry.encode(live), px=30_000)
        client.sadd(registry.workers_set(prefix), live.id)
        for queue in (live.queue, dead_queue):  # what kombu keeps: the list of commands and a binding
            client.lpush(queue, "a command nobody will run")
            client.sadd(f"_kombu.binding.{queue}", f"{queue}\x06\x16\x06\x16{queue}")
        janitor = sweeper.QueueJanitor()
        assert janitor.sweep() == 0  # first seen without a worker: a suspect only
        assert client.exists(dead_queue, f"_kombu.binding.{dead_queue}") == 2
        assert janitor.sweep() == 1
        assert client.exists(dead_queue, f"_kombu.binding.{dead_queue}") == 0
        assert client.exists(live.queue, f"_kombu.binding.{live.queue}") == 2
    finally:
        client.delete(*registry.queue_redis_keys(live.queue), *registry.queue_redis_keys(dead_queue))
        client.delete(registry.worker_key(prefix, live.id), registry.workers_set(prefix))
        client.close()


@pytest.mark.django_db
def test_a_stream_is_closed_only_when_two_rounds_found_its_heartbeat_stale_and_unmoved(tenant_a, settings):
    """After a database outage every live row is stale until its gateway's next flush: one round
    only suspects; a row whose heartbeat moved before the next is left alone."""
    settings.ASR_SESSION_STALE_S, settings.ASR_RESUME_GRACE_S = 60, 0
    lost_one, revived = _start(tenant_a.tenant.pk), _start(tenant_a.tenant.pk)
    Session.objects.filter(pk__in=[lost_one.pk, revived.pk]).update(last_seen_at=timezone.now() - timedelta(hours=1))
    lost = sweeper.LostSessions()
    assert lost.sweep() == 0 and set(lost.suspects) == {lost_one.pk, revived.pk}
    services.session_meter(tenant_id=tenant_a.tenant.pk, session_id=revived.pk, audio_seconds=4.0)  # its flush
    assert lost.sweep() == 1
    assert Session.objects.get(pk=lost_one.pk).close_reason == LOST
    assert Session.objects.get(pk=revived.pk).status == Session.Status.ACTIVE


@pytest.mark.django_db
def test_the_owners_own_close_arriving_after_a_lost_guess_is_the_truth(tenant_a):
    session = _start(tenant_a.tenant.pk)
    services.session_finish(tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason=LOST, audio_seconds=2)
    services.session_finish(tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason="stop", audio_seconds=58)
    session.refresh_from_db()
    assert (session.close_reason, session.audio_seconds) == ("stop", 58)
    services.session_finish(tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason=LOST, audio_seconds=1)
    session.refresh_from_db()
    assert (session.close_reason, session.audio_seconds) == ("stop", 58)  # a real close is never undone
