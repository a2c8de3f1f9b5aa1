"""Concurrency caps, monthly quotas and exact metering, enforced by the gateway."""

import asyncio
import uuid

import numpy as np
import pytest

from accounts.models import Tenant
from tests.support.audio import clip, to_s16
from tests.support.ws import Transcript, communicator, read_until_closed, send_audio, send_json
from transcription import selectors
from transcription.gateway.admission import LocalAdmission, RedisAdmission
from transcription.models import Session
from transcription.quota import LedgerKey, LocalLedger, RedisLedger

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("models_loaded")]


async def set_tenant(tenant, **fields):
    await Tenant.objects.filter(pk=tenant.pk).aupdate(**fields)


async def test_over_the_concurrency_cap_is_refused_with_4029_and_leaves_no_session(tenant_a):
    await set_tenant(tenant_a.tenant, max_concurrent_streams=1)
    first = communicator(tenant_a.raw_key)
    await first.connect()
    await send_json(first, {"type": "start"})
    assert (await first.receive_json_from(timeout=10))["type"] == "ready"
    second = communicator(tenant_a.raw_key)
    await second.connect()
    await send_json(second, {"type": "start"})
    refused = await read_until_closed(second, Transcript(), timeout=10)
    await second.disconnect()
    assert refused.close_code == 4029 and refused.error["code"] == "concurrency_limit"
    assert await Session.objects.acount() == 1
    await send_json(first, {"type": "stop"})
    await read_until_closed(first, Transcript(), timeout=10)
    await first.disconnect()
    third = communicator(tenant_a.raw_key)  # the slot is free again
    await third.connect()
    await send_json(third, {"type": "start"})
    assert (await third.receive_json_from(timeout=10))["type"] == "ready"
    await third.disconnect()


async def test_one_tenant_at_its_cap_does_not_block_another(tenant_a, tenant_b):
    await set_tenant(tenant_a.tenant, max_concurrent_streams=1)
    comms = [communicator(tenant_a.raw_key), communicator(tenant_b.raw_key)]
    try:
        for comm in comms:
            await comm.connect()
            await send_json(comm, {"type": "start"})
            assert (await comm.receive_json_from(timeout=10))["type"] == "ready"
    finally:
        for comm in comms:
            await comm.disconnect()


@pytest.mark.parametrize("kind", ["redis", "local"])
async def test_slots_of_a_crashed_gateway_expire_and_are_shared_across_gateways(kind):
    tenant = 10**9 + np.random.randint(10**6)
    if kind == "redis":
        prefix = f"asrtest-{uuid.uuid4().hex[:6]}"
        gateway_1 = RedisAdmission("redis://127.0.0.1:6379/0", prefix, ttl_s=1.0)
        gateway_2 = RedisAdmission("redis://127.0.0.1:6379/0", prefix, ttl_s=1.0)
    else:
        gateway_1 = gateway_2 = LocalAdmission(ttl_s=1.0)
    assert await gateway_1.acquire(tenant, "s1", 2)
    assert await gateway_2.acquire(tenant, "s2", 2)
    assert not await gateway_2.acquire(tenant, "s3", 2)  # the cap holds across gateways
    assert await gateway_1.acquire(tenant, "s1", 2)  # re-acquiring your own slot is fine
    await asyncio.sleep(0.6)
    await gateway_2.heartbeat(tenant, "s2")  # gateway 2 is alive, gateway 1 has "crashed"
    await asyncio.sleep(0.6)
    assert await gateway_2.live_count(tenant) == 1
    assert await gateway_2.acquire(tenant, "s3", 2)
    await gateway_2.release(tenant, "s2")
    assert await gateway_2.live_count(tenant) == 1


async def test_used_up_quota_is_refused_at_connect(tenant_a):
    await set_tenant(tenant_a.tenant, monthly_audio_seconds_quota=0)
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start"})
    refused = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert refused.close_code == 4029 and refused.error["code"] == "quota_exceeded"
    assert await Session.objects.acount() == 0


async def test_quota_running_out_mid_stream_stores_the_open_utterance_then_closes(tenant_a, eval_dir):
    await set_tenant(tenant_a.tenant, monthly_audio_seconds_quota=3)
    speech = clip(eval_dir, "librivox-0870.wav")
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    transcript = Transcript()
    await send_json(comm, {"type": "start", "interim_results": False})
    await send_audio(comm, to_s16(speech[: 16000 * 5]), transcript=transcript)
    await read_until_closed(comm, transcript, timeout=30)
    await comm.disconnect()
    assert transcript.close_code == 4029 and transcript.error["code"] == "quota_exceeded"
    assert len(transcript.finals) == 1 and "dashwood" in transcript.finals[0]["text"].lower()
    session = await Session.objects.aget(pk=transcript.messages[0]["session_id"])
    assert session.close_reason == "quota_exceeded" and session.audio_seconds == pytest.approx(3.0, abs=1e-6)
    assert await session.segments.acount() == 1


async def test_usage_is_metered_exactly_per_session_and_summed_per_month(tenant_a, tenant_b, eval_dir):
    durations = [(16000, 2.5), (44100, 4.0), (8000, 1.3)]
    for rate, seconds in durations:
        comm = communicator(tenant_a.raw_key)
        await comm.connect()
        await send_json(comm, {"type": "start", "sample_rate": rate})
        await send_audio(comm, np.zeros(int(rate * seconds), dtype="<i2").tobytes(), frame_bytes=rate // 5 * 2)
        await send_json(comm, {"type": "stop"})
        await read_until_closed(comm, Transcript(), timeout=30)
        await comm.disconnect()
    used = await asyncio.to_thread(selectors.usage_seconds_this_month, tenant_id=tenant_a.tenant.pk)
    assert used == pytest.approx(7.8, abs=0.1)
    assert await asyncio.to_thread(selectors.usage_seconds_this_month, tenant_id=tenant_b.tenant.pk) == 0.0


async def test_a_live_session_writes_its_usage_before_it_ends(tenant_a, settings):
    settings.ASR_USAGE_FLUSH_S = 0.2
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start"})
    ready = await comm.receive_json_from(timeout=10)
    await send_audio(comm, np.zeros(16000 * 2, dtype="<i2").tobytes())
    await asyncio.sleep(1.5)
    session = await Session.objects.aget(pk=ready["session_id"])
    assert session.status == "active" and session.audio_seconds == pytest.approx(2.0)
    await comm.disconnect()


@pytest.mark.parametrize("how", ["suspend tenant", "revoke key"])
async def test_suspending_a_tenant_or_revoking_its_key_closes_live_sessions_with_forbidden(
    tenant_a, eval_dir, settings, how
):
    from accounts.models import ApiKey
    from transcription import metrics

    settings.ASR_USAGE_FLUSH_S = 0.2
    speech = clip(eval_dir, "librivox-0870.wav")
    errors_before = metrics.ERRORS.labels(code="forbidden")._value.get()
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    transcript = Transcript()
    await send_json(comm, {"type": "start", "interim_results": False})
    await send_audio(comm, to_s16(speech[: 16000 * 3]), transcript=transcript)
    if how == "suspend tenant":
        await set_tenant(tenant_a.tenant, is_active=False)
    else:
        await ApiKey.objects.filter(pk=tenant_a.api_key.pk).aupdate(revoked_at="2026-01-01T00:00:00Z")
    await read_until_closed(comm, transcript, timeout=30)
    await comm.disconnect()
    assert transcript.close_code == 4003 and transcript.error["code"] == "forbidden"
    assert len(transcript.finals) == 1  # what was said before is finalized and stored
    session = await Session.objects.aget(pk=transcript.messages[0]["session_id"])
    assert session.close_reason == "forbidden" and await session.segments.acount() == 1
    assert metrics.ERRORS.labels(code="forbidden")._value.get() == errors_before + 1


async def test_final_latency_is_observed_for_metrics(tenant_a, eval_dir):
    from transcription import metrics

    before = metrics.FINAL_LATENCY._sum.get(), sum(b.get() for b in metrics.FINAL_LATENCY._buckets)
    speech = clip(eval_dir, "goforward.wav")
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start", "interim_results": False})
    await send_audio(comm, to_s16(np.concatenate([speech, np.zeros(24000, np.float32)])), pace_s=0.02)
    await send_json(comm, {"type": "stop"})
    transcript = await read_until_closed(comm, Transcript(), timeout=30)
    await comm.disconnect()
    assert len(transcript.finals) == 1
    observed = sum(b.get() for b in metrics.FINAL_LATENCY._buckets) - before[1]
    assert observed == 1 and 0 < metrics.FINAL_LATENCY._sum.get() - before[0] < 10


async def stream_silence(raw_key: str, seconds: float) -> Transcript:
    """One stream of ``seconds`` of audio sent as fast as the gateway takes it, then ``stop``."""
    comm = communicator(raw_key)
    await comm.connect()
    transcript = Transcript()
    await send_json(comm, {"type": "start", "interim_results": False})
    await send_audio(comm, np.zeros(int(16000 * seconds), dtype="<i2").tobytes(), transcript=transcript)
    await send_json(comm, {"type": "stop"})
    await read_until_closed(comm, transcript, timeout=60)
    await comm.disconnect()
    return transcript


@pytest.mark.parametrize("ledger", ["local", "redis"])
async def test_concurrent_streams_cannot_spend_the_same_quota_twice(tenant_a, settings, ledger):
    """Three streams of 12 s on a 20 s quota: together they get 20 s at most (each alone fits)."""
    if ledger == "redis":
        settings.ASR_QUOTA_REDIS_URL = "redis://127.0.0.1:6379/0"
        settings.ASR_REDIS_PREFIX = f"asrtest-{uuid.uuid4().hex[:8]}"
    await set_tenant(tenant_a.tenant, monthly_audio_seconds_quota=20, max_concurrent_streams=5)
    transcripts = await asyncio.gather(*(stream_silence(tenant_a.raw_key, 12.0) for _ in range(3)))
    used = await asyncio.to_thread(selectors.usage_seconds_this_month, tenant_id=tenant_a.tenant.pk)
    assert 19.0 <= used <= 20.0 + 1e-6
    cut = [t for t in transcripts if t.error and t.error["code"] == "quota_exceeded"]
    assert len(cut) >= 1 and all(t.close_code == 4029 for t in cut)
    refused = await stream_silence(tenant_a.raw_key, 1.0)  # and the month is used up for the next one
    assert refused.error["code"] == "quota_exceeded"


async def test_a_stream_gives_back_the_quota_it_was_granted_and_did_not_use(tenant_a, settings):
    settings.ASR_QUOTA_GRANT_S = 5.0
    await set_tenant(tenant_a.tenant, monthly_audio_seconds_quota=10)
    first = await stream_silence(tenant_a.raw_key, 1.5)  # granted 5 s, used 1.5 s
    assert first.error is None
    second = await stream_silence(tenant_a.raw_key, 12.0)
    assert second.error["code"] == "quota_exceeded"
    used = await asyncio.to_thread(selectors.usage_seconds_this_month, tenant_id=tenant_a.tenant.pk)
    assert used == pytest.approx(10.0, abs=1e-3)


@pytest.mark.parametrize("kind", ["local", "redis"])
async def test_the_ledger_grants_each_second_once_across_processes_and_is_seeded_from_the_database(kind):
    key = LedgerKey(10**9 + np.random.randint(10**6), "2026-12")
    if kind == "redis":
        prefix = f"asrtest-{uuid.uuid4().hex[:8]}"
        gateways: list = [RedisLedger("redis://127.0.0.1:6379/0", prefix) for _ in range(2)]
    else:
        gateways = [LocalLedger()] * 2
    assert await gateways[0].atake(key, 1.0, 20.0) is None  # not seeded: the caller seeds it from the database
    await gateways[0].aseed(key, 5.5)
    await gateways[1].aseed(key, 0.0)  # a second seeding loses: the ledger was already there
    grants = await asyncio.gather(*(gateways[i % 2].atake(key, 0.75, 20.0) for i in range(40)))
    assert sum(grants) == pytest.approx(14.5) and max(grants) == 0.75 and min(grants) == 0.0
    await gateways[1].agive_back(key, 2.0)
    assert await gateways[0].atake(key, 3.0, 20.0, whole=True) == 0.0  # all or nothing
    assert await gateways[0].atake(key, 2.0, 20.0, whole=True) == pytest.approx(2.0)
    assert await asyncio.to_thread(gateways[1].used, key) == pytest.approx(20.0)
