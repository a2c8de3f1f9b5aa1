"""ASR_DISPATCH=celery through a Redis that blinks: killed mid-session and restarted empty, or away for good.

Everything runs for real on a Redis server of this module's own (never the machine's shared one): an
inference worker, a gateway process and real speech. Broker, channel layer, registry, admission and
cache all use that one Redis, so killing it takes all of them away at once. The last test runs the
gateway's side in this process, on the shared Redis like test_distributed.py (this process's Celery
app keeps the broker it first connected to, so it is never pointed at the Redis that gets killed).
"""

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis
from channels.layers import channel_layers
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.cluster import WorkerPool
from bench.evaluation import normalize_text
from tests.support.audio import clips_s16
from tests.support.clusters import use_celery_in_process, worker_cluster
from tests.support.paths import artifacts
from tests.support.servers import child_env, free_port, gateway_server, running_in_thread
from tests.support.tenants import make_tenant
from transcription.dispatch import get_dispatcher
from transcription.engine import SessionLimits, TranscriptEvent, parse_start
from transcription.gateway.errors import CLOSE_INTERNAL
from transcription.models import Segment, Session
from transcription.runner.contract import EngineFailure

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CLIPS = ["cards-001.wav", "goforward.wav", "new-home.wav"]
FRAME = 3200  # 100 ms of pcm_s16le at 16 kHz
KILL_AT_FRAME = 32  # cards-001 (1.1 s) + 1.5 s of silence: half a second into "go forward ten meters"
DOWN_S = 3.0


class RedisServer:
    """A redis-server of the test's own, without persistence: a restart comes back empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def run_id(self) -> str:
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        try:
            return str(client.info("server")["run_id"])
        finally:
            client.close()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


def redis_env(url: str, prefix: str) -> dict[str, str]:
    """Every Redis client of a child process on ``url``, Celery dispatch, a registry prefix of this run."""
    urls = ["REDIS_URL", "ASR_REGISTRY_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"]
    urls += ["ASR_ADMISSION_REDIS_URL", "ASR_QUOTA_REDIS_URL"]
    return {**{name: url for name in urls}, "ASR_DISPATCH": "celery", "ASR_REDIS_PREFIX": prefix}


@pytest.fixture(scope="module")
def worker(own_redis, django_db_setup, django_db_blocker) -> Iterator[WorkerPool]:
    """One inference worker: after Redis comes back empty, the session must stay with it (no other to move to)."""
    prefix = f"asrfault-{uuid.uuid4().hex[:8]}"
    env = child_env(ASR_PRELOAD="0", **redis_env(own_redis.url, prefix))
    pool = WorkerPool(
        env,
        prefix=prefix,
        redis_url=own_redis.url,
        log_dir=artifacts(),
        log_prefix="fault-worker-",
        loglevel="WARNING",
        startup_timeout=120,
    )
    try:
        pool.start("w1")
        pool.wait_live({"w1"})
        yield pool
    finally:
        pool.stop()


def gateway(own_redis: RedisServer, worker: WorkerPool, outage_s: float):
    return gateway_server(
        extra_env={**redis_env(own_redis.url, worker.prefix), "ASR_REDIS_OUTAGE_S": str(outage_s), "ASR_PRELOAD": "0"}
    )


@pytest.fixture
def three_utterances(eval_dir) -> bytes:
    return clips_s16(eval_dir, CLIPS, gap_s=1.5)


OnFrame = Callable[[int], Awaitable[None]]


async def stream(url: str, key: str, pcm: bytes, *, pace_s: float = 0.0, on_frame: OnFrame | None = None) -> dict:
    """Send ``pcm`` in 100 ms frames, then stop; returns the server's messages and its close code."""
    messages: list[dict] = []
    async with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:

        async def collect() -> None:
            try:
                async for text in ws:
                    messages.append(json.loads(text))
            except ConnectionClosed:
                pass

        await ws.send(json.dumps({"type": "start", "interim_results": False}))
        reader = asyncio.create_task(collect())
        try:
            for frame, offset in enumerate(range(0, len(pcm), FRAME)):
                await ws.send(pcm[offset : offset + FRAME])
                if on_frame is not None:
                    await on_frame(frame)
                await asyncio.sleep(pace_s)
            await ws.send(json.dumps({"type": "stop"}))
        except ConnectionClosed:
            pass  # the server ended the session: what it said is in messages
        await asyncio.wait_for(reader, timeout=120)
    return {"messages": messages, "close_code": ws.close_code}


def finals(result: dict) -> list[dict]:
    return [m for m in result["messages"] if m["type"] == "final"]


async def stored_segments(session_id: str) -> list[Segment]:
    return [s async for s in Segment.objects.filter(session_id=session_id).order_by("index")]


async def test_a_redis_restart_mid_utterance_loses_no_final(own_redis, worker, three_utterances):
    key = (await asyncio.to_thread(make_tenant, "blink")).raw_key
    run_before = await asyncio.to_thread(own_redis.run_id)
    restarted: list[asyncio.Task] = []

    async def blink(frame: int) -> None:
        if frame == KILL_AT_FRAME:
            await asyncio.to_thread(own_redis.kill)

            async def restart() -> None:
                await asyncio.sleep(DOWN_S)
                await asyncio.to_thread(own_redis.start)

            restarted.append(asyncio.create_task(restart()))

    async with running_in_thread(gateway(own_redis, worker, outage_s=30)) as server:
        clean = await stream(server.url, key, three_utterances)
        blinked = await stream(server.url, key, three_utterances, pace_s=0.05, on_frame=blink)
        await restarted[0]

    assert await asyncio.to_thread(own_redis.run_id) != run_before  # Redis really went away, and came back empty
    assert clean["close_code"] == 1000 and len(finals(clean)) == 3
    assert blinked["close_code"] == 1000 and blinked["messages"][-1]["type"] == "closed"
    got = finals(blinked)
    assert [f["segment"] for f in got] == [0, 1, 2]
    assert [normalize_text(f["text"]) for f in got] == [normalize_text(f["text"]) for f in finals(clean)]
    session_id = blinked["messages"][0]["session_id"]
    assert [(s.index, s.text) for s in await stored_segments(session_id)] == [(f["segment"], f["text"]) for f in got]
    session = await Session.objects.aget(pk=session_id)
    assert session.status == "closed" and session.close_reason == "stop"


async def test_redis_away_longer_than_the_outage_budget_ends_the_session_and_the_next_one_is_served(
    own_redis, worker, three_utterances
):
    key = (await asyncio.to_thread(make_tenant, "outage")).raw_key

    async def kill_for_good(frame: int) -> None:
        if frame == KILL_AT_FRAME:
            await asyncio.to_thread(own_redis.kill)

    async with running_in_thread(gateway(own_redis, worker, outage_s=2)) as server:
        try:
            # Real time: the session must end while the client is still sending.
            failed = await stream(server.url, key, three_utterances, pace_s=0.1, on_frame=kill_for_good)
        finally:
            await asyncio.to_thread(own_redis.start)
        await asyncio.to_thread(worker.wait_live, {"w1"}, 30)
        served = await stream(server.url, key, three_utterances)

    error = next(m for m in failed["messages"] if m["type"] == "error")
    assert failed["close_code"] == CLOSE_INTERNAL and error["code"] == "internal_error" and "Redis" in error["message"]
    session = await Session.objects.aget(pk=failed["messages"][0]["session_id"])
    assert session.status == "closed" and session.close_reason == "internal_error"
    assert served["close_code"] == 1000 and len(finals(served)) == 3


@pytest.fixture(scope="module")
def shared_redis_worker(django_db_setup, django_db_blocker):
    with worker_cluster(["s1"], idle_ttl_s=30) as workers:
        yield workers


@pytest.fixture
def celery_in_process(settings, shared_redis_worker):
    """This process's dispatcher on the shared Redis's worker, as test_distributed.py sets it up."""
    use_celery_in_process(settings, shared_redis_worker.prefix)
    settings.ASR_FINISH_TIMEOUT_S = 20
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def test_a_final_the_gateway_fails_to_take_does_not_stop_the_results_after_it(
    tenant_a, three_utterances, celery_in_process
):
    """Storing a final can fail (the database away): the result reader logs it and goes on."""
    events: list[TranscriptEvent | EngineFailure] = []

    async def sink(event: TranscriptEvent | EngineFailure) -> None:
        events.append(event)
        if isinstance(event, TranscriptEvent) and event.is_final and event.segment == 0:
            raise RuntimeError("storing the final failed")

    config = parse_start({"interim_results": False}, SessionLimits())
    handle = await get_dispatcher().open_session(
        session_id=str(uuid.uuid4()), tenant_id=tenant_a.tenant.pk, config=config, sink=sink
    )
    for offset in range(0, len(three_utterances), FRAME):
        await handle.push_audio(three_utterances[offset : offset + FRAME])
    started = time.monotonic()
    await handle.finish("stop")

    assert time.monotonic() - started < 15  # the worker's "finished" came through, not the 20 s timeout
    assert [e.segment for e in events if isinstance(e, TranscriptEvent) and e.is_final] == [0, 1, 2]
