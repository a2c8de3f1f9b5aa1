"""ASR_DISPATCH=celery with real Redis, real PostgreSQL and real worker processes (kill -9 included)."""

import asyncio
import time
import uuid

import numpy as np
import pytest
from channels.layers import channel_layers

from bench.evaluation import normalize_text, word_error_rate
from tests.support.audio import clip, clips_s16, to_s16
from tests.support.clusters import REDIS_URL, use_celery_in_process, worker_cluster
from tests.support.ws import Transcript, communicator, read_until_closed, send_audio, send_json
from transcription import services
from transcription.dispatch import get_dispatcher
from transcription.engine import SessionLimits, parse_start
from transcription.gateway.registry import registry
from transcription.models import Segment, Session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
IDLE_TTL_S = 4.0
CLIPS = ["cards-001.wav", "goforward.wav", "new-home.wav"]
REFERENCES = ["ten of clubs", "go forward ten meters", "we must find a new home in the stars"]


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker):
    with worker_cluster(["w1", "w2"], idle_ttl_s=IDLE_TTL_S) as workers:
        yield workers


@pytest.fixture(autouse=True)
def celery_dispatch(settings, cluster, engine_models):
    """Point this process's gateway at the cluster: Celery dispatch, Redis channel layer and registry."""
    use_celery_in_process(settings, cluster.prefix)
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def three_utterances(eval_dir) -> bytes:
    return clips_s16(eval_dir, CLIPS, gap_s=1.5)


async def stream(
    raw_key: str, pcm: bytes, *, pace_s: float = 0.0, on_frame=None, frame_bytes: int = 3200
) -> Transcript:
    comm = communicator(raw_key)
    await comm.connect()
    transcript = Transcript()
    try:
        await send_json(comm, {"type": "start"})
        for i in range(0, len(pcm), frame_bytes):
            await comm.send_to(bytes_data=pcm[i : i + frame_bytes])
            if on_frame is not None:
                await on_frame(i // frame_bytes, transcript, comm)
            if pace_s:
                await asyncio.sleep(pace_s)
        await send_json(comm, {"type": "stop"})
        return await read_until_closed(comm, transcript, timeout=90)
    finally:
        await comm.disconnect(timeout=30)


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.2)


async def test_finals_through_workers_match_embedded_mode(tenant_a, three_utterances, settings, cluster):
    distributed = await stream(tenant_a.raw_key, three_utterances)
    settings.ASR_DISPATCH = "local"
    embedded = await stream(tenant_a.raw_key, three_utterances)
    assert distributed.close_code == embedded.close_code == 1000
    # The same words either way. Punctuation may differ: a process whose decode threads are busy
    # decodes short finals with the thrifty 15 s window, which can turn
    # "10 of clubs." into "10 of clubs". (Speculated or not, a final is otherwise the same:
    # test_a_final_is_the_same_whether_or_not_it_was_speculated.)
    texts = [[normalize_text(f["text"]) for f in t.finals] for t in (distributed, embedded)]
    assert texts[0] == texts[1]
    assert word_error_rate(REFERENCES, [f["text"] for f in distributed.finals]) == 0.0
    session = await Session.objects.aget(pk=distributed.messages[0]["session_id"])
    assert await session.segments.acount() == 3 and session.close_reason == "stop"


async def test_a_phone_line_s_20_ms_frames_reach_the_worker_in_vad_steps_with_the_same_finals(
    tenant_a, three_utterances, settings, cluster
):
    """A Celery task per client frame cost the worker ~3 ms of its main thread each: 50 a second per
    phone line. The gateway sends ASR_CELERY_AUDIO_STEP_MS of audio per task instead."""
    before = await scrape(settings)
    transcript = await stream(tenant_a.raw_key, three_utterances, frame_bytes=640)
    after = await scrape(settings)

    assert transcript.close_code == 1000
    assert word_error_rate(REFERENCES, [f["text"] for f in transcript.finals]) == 0.0
    tasks = sample(after, "asr_dispatch_lag_seconds_count") - sample(before, "asr_dispatch_lag_seconds_count")
    steps, frames = -(-len(three_utterances) // 6400), -(-len(three_utterances) // 640)
    # A task per 200 ms step (a stall of the test's loop over 200 ms may send a step early), not
    # one per 640-byte frame: ten times fewer.
    assert steps <= tasks <= steps + 3 and tasks * 5 < frames


async def test_the_gateway_subscribes_to_no_task_results(tenant_a, three_utterances, cluster):
    """Results come back through the channel layer. Without ``ignore_result`` on send_task, Celery
    subscribed the gateway to every audio frame's task result in Redis (and unsubscribed when the
    AsyncResult was collected): two Redis commands per frame for results that never come."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)

    def subscribes() -> int:
        return int(client.info("commandstats").get("cmdstat_subscribe", {}).get("calls", 0))

    before = subscribes()
    transcript = await stream(tenant_a.raw_key, three_utterances)

    assert transcript.close_code == 1000 and len(transcript.finals) == 3
    assert subscribes() == before


async def test_a_finished_session_leaves_nothing_in_the_channel_layer_buffer(tenant_a, three_utterances, cluster):
    """channels_redis left an empty queue behind per session (its result channel, the consumer's own)."""
    from channels.layers import get_channel_layer

    transcript = await stream(tenant_a.raw_key, three_utterances[: 16000 * 2 * 3])

    assert transcript.close_code == 1000
    assert list(get_channel_layer().receive_buffer) == []


async def test_two_concurrent_sessions_land_on_different_workers(tenant_a, cluster):
    first, second = communicator(tenant_a.raw_key), communicator(tenant_a.raw_key)
    try:
        for comm in (first, second):
            await comm.connect()
            await send_json(comm, {"type": "start"})
            assert (await comm.receive_json_from(timeout=15))["type"] == "ready"
        await wait_for(lambda: sorted(len(s) for s in cluster.sessions_by_worker().values()) == [1, 1])
        for comm in (first, second):
            await send_json(comm, {"type": "stop"})
            await read_until_closed(comm, Transcript(), timeout=15)
    finally:
        await first.disconnect()
        await second.disconnect()
    # The workers drop a session's state when it closes.
    await wait_for(lambda: all(not s for s in cluster.sessions_by_worker().values()))


async def test_no_live_worker_refuses_with_no_capacity_and_leaves_no_session(tenant_a, settings):
    settings.ASR_REDIS_PREFIX = f"empty-{uuid.uuid4().hex[:6]}"
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start"})
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4029 and transcript.error["code"] == "no_capacity"
    assert await Session.objects.acount() == 0


async def test_resuming_on_a_gateway_with_no_live_worker_is_refused_with_no_capacity(
    tenant_a, three_utterances, settings
):
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start", "interim_results": False})
    ready = await comm.receive_json_from(timeout=15)
    await send_audio(comm, three_utterances[: 16000 * 2], frame_bytes=3200)
    await comm.disconnect()  # dropped: parked here for the grace period
    # As after a gateway restart: the session is no longer parked here, only its row says where it was.
    parked = await wait_for_parked(ready["session_id"])
    await parked.handle.finish("disconnect")
    settings.ASR_REDIS_PREFIX = f"empty-{uuid.uuid4().hex[:6]}"

    again = communicator(tenant_a.raw_key)
    await again.connect()
    resume_request = {"session_id": ready["session_id"], "resume_token": ready["resume_token"]}
    await send_json(again, {"type": "start", "resume": resume_request})
    refused = await read_until_closed(again, Transcript(), timeout=10)
    await again.disconnect()
    assert refused.close_code == 4029 and refused.error["code"] == "no_capacity"
    assert (await Session.objects.aget(pk=ready["session_id"])).status == "interrupted"


async def wait_for_parked(session_id: str):
    for _ in range(100):
        if (parked := registry.claim(session_id)) is not None:
            return parked.live
        await asyncio.sleep(0.1)
    raise TimeoutError("the dropped session was never parked")


async def test_workers_lagging_behind_real_time_refuse_new_sessions_with_overloaded(
    tenant_a, eval_dir, settings, cluster
):
    settings.ASR_WORKER_MAX_LAG_S = 0.5
    from bench.evaluation import concatenate_clips

    flood = to_s16(concatenate_clips(eval_dir / "real", gap_s=1.0).audio)  # 69 s of speech, sent at once
    floods = [communicator(tenant_a.raw_key) for _ in range(2)]
    try:
        for comm in floods:
            await comm.connect()
            await send_json(comm, {"type": "start", "interim_results": False})
            assert (await comm.receive_json_from(timeout=15))["type"] == "ready"
        for comm in floods:
            await send_audio(comm, flood, frame_bytes=32000)
        await wait_for(lambda: all(w.lag_s > 0.5 for w in cluster.live_workers()), timeout=15)
        late = communicator(tenant_a.raw_key)
        await late.connect()
        await send_json(late, {"type": "start"})
        refused = await read_until_closed(late, Transcript(), timeout=10)
        await late.disconnect()
        assert refused.close_code == 4029 and refused.error["code"] == "overloaded"
    finally:
        for comm in floods:
            await comm.disconnect(timeout=60)
    await wait_for(lambda: all(w.lag_s == 0 and not w.sessions for w in cluster.live_workers()), timeout=60)


async def test_kill_9_of_the_session_s_worker_mid_utterance_loses_no_final(tenant_a, three_utterances, cluster):
    killed: list[str] = []
    long_clip_frames = len(three_utterances) // 3200

    async def kill_during_second_utterance(frame: int, transcript: Transcript, comm) -> None:
        # cards-001 (1.1 s) + 1.5 s silence: frame 32 is half a second into "go forward ten meters".
        if frame == 32 and not killed:
            holder = next(w for w, sessions in cluster.sessions_by_worker().items() if sessions)
            cluster.kill9(holder)
            killed.append(holder)

    transcript = await stream(tenant_a.raw_key, three_utterances, pace_s=0.05, on_frame=kill_during_second_utterance)
    assert killed and long_clip_frames > 32
    assert transcript.close_code == 1000 and transcript.messages[-1]["type"] == "closed"
    finals = transcript.finals
    assert [f["segment"] for f in finals] == [0, 1, 2]
    assert word_error_rate(REFERENCES, [f["text"] for f in finals]) == 0.0
    stored = [
        s async for s in Segment.objects.filter(session_id=transcript.messages[0]["session_id"]).order_by("index")
    ]
    assert [s.text for s in stored] == [f["text"] for f in finals]
    cluster.start(killed[0])  # back to two workers for the tests that follow
    await asyncio.to_thread(cluster.wait_live, {"w1", "w2"})


async def test_a_worker_frees_and_stores_a_session_whose_gateway_vanished(tenant_a, eval_dir, cluster):
    speech = clip(eval_dir, "librivox-0870.wav")
    session_id = uuid.uuid4()
    await asyncio.to_thread(
        services.session_start,
        session_id=session_id,
        tenant_id=tenant_a.tenant.pk,
        api_key_id=None,
        language="en",
        engine="test",
        sample_rate=16000,
    )
    events = []

    async def sink(event):
        events.append(event)

    config = parse_start({"interim_results": False}, SessionLimits())
    handle = await get_dispatcher().open_session(
        session_id=str(session_id), tenant_id=tenant_a.tenant.pk, config=config, sink=sink
    )
    pcm = to_s16(speech[: 16000 * 4])
    for i in range(0, len(pcm), 3200):
        await handle.push_audio(pcm[i : i + 3200])
    await wait_for(lambda: any(str(session_id) in s for s in cluster.sessions_by_worker().values()))
    handle._stop_tasks()  # the gateway vanishes: it never sends finish

    await wait_for(
        lambda: not any(str(session_id) in s for s in cluster.sessions_by_worker().values()), timeout=IDLE_TTL_S + 6
    )
    session = await Session.objects.aget(pk=session_id)
    segments = [s async for s in session.segments.all()]
    assert session.status == "closed" and session.close_reason == "disconnect"
    assert session.audio_seconds == pytest.approx(4.0)
    assert len(segments) == 1 and segments[0].reason == "disconnect" and "dashwood" in segments[0].text.lower()
    assert events == []  # nothing reached the vanished gateway


async def scrape(settings) -> str:
    from django.test import AsyncClient

    settings.ASR_METRICS_TOKEN = "scrape-secret"
    response = await AsyncClient().get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status_code == 200
    return response.content.decode()


def sample(body: str, name: str) -> float:
    return float(next(line for line in body.splitlines() if line.startswith(name + " ")).rsplit(" ", 1)[1])


async def test_metrics_count_one_dispatch_lag_per_audio_command_and_show_each_worker(
    tenant_a, eval_dir, settings, cluster
):
    settings.ASR_CELERY_AUDIO_STEP_MS = 0  # a task per frame, so that the count is exact
    speech = clip(eval_dir, "goforward.wav")
    pcm = to_s16(np.concatenate([speech, np.zeros(8000, np.float32)]))
    before = await scrape(settings)
    transcript = await stream(tenant_a.raw_key, pcm)
    after = await scrape(settings)
    assert transcript.close_code == 1000 and [f["text"] for f in transcript.finals]
    frames = -(-len(pcm) // 3200)
    count = sample(after, "asr_dispatch_lag_seconds_count") - sample(before, "asr_dispatch_lag_seconds_count")
    total = sample(after, "asr_dispatch_lag_seconds_sum") - sample(before, "asr_dispatch_lag_seconds_sum")
    assert count == frames  # every audio command's lag came back with the session's results
    assert 0 <= total / count < 1.0
    for name in ("w1", "w2"):
        assert sample(after, f'asr_worker_queue_depth{{worker="{name}"}}') == 0
        assert 0 <= sample(after, f'asr_worker_heartbeat_age_seconds{{worker="{name}"}}') < settings.ASR_WORKER_TTL_S
        assert sample(after, f'asr_worker_lag_seconds{{worker="{name}"}}') >= 0


async def test_metrics_show_a_worker_s_unfetched_queue_and_the_age_of_its_last_heartbeat(settings, cluster):
    from asrplatform.celery import app
    from transcription.runner import registry

    # A registered worker that consumes nothing (capacity 0: no gateway sends it a session).
    ghost = registry.WorkerInfo(
        id="ghost",
        queue=registry.worker_queue(cluster.prefix, "ghost"),
        capacity=0,
        device="cpu",
        model="none",
        host="test",
        pid=0,
        beat_at=time.time() - 7.5,
    )
    cluster.redis.set(registry.worker_key(cluster.prefix, ghost.id), registry.encode(ghost), px=30_000)
    cluster.redis.sadd(registry.workers_set(cluster.prefix), ghost.id)
    try:
        for seq in range(3):
            await asyncio.to_thread(app.send_task, "asr.ping", args=["nobody", seq, time.time()], queue=ghost.queue)
        body = await scrape(settings)
        assert sample(body, 'asr_worker_queue_depth{worker="ghost"}') == 3
        assert 7.0 <= sample(body, 'asr_worker_heartbeat_age_seconds{worker="ghost"}') < 9.0
        assert sample(body, 'asr_worker_heartbeat_age_seconds{worker="w1"}') < settings.ASR_WORKER_TTL_S
    finally:
        registry.remove_sync(cluster.redis, cluster.prefix, ghost.id)
        cluster.redis.delete(*registry.queue_redis_keys(ghost.queue))
