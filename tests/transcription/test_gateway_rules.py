"""The gateway no client can wedge: each rule of the house issue, through the real application.

Real models, PostgreSQL and (for the Redis rule) a Redis server this test starts and stops itself.
"""

import asyncio
import logging
import shutil
import socket
import subprocess
import time

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Tenant
from tests.support.audio import clip, to_s16
from tests.support.servers import free_port, gateway_server
from tests.support.tenants import make_tenant
from tests.support.ws import Transcript, communicator, read_until_closed, send_audio, send_json
from transcription.engine import StreamingSession, parse_start
from transcription.engine_settings import session_limits
from transcription.gateway.admission import get_admission
from transcription.models import Segment, Session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("models_loaded")]
SILENCE = np.zeros(24000, dtype=np.float32)  # 1.5 s


def speech(eval_dir, name: str = "cards-001.wav") -> bytes:
    return to_s16(np.concatenate([clip(eval_dir, name), SILENCE]))


async def started(raw_key: str, **start) -> tuple:
    comm = communicator(raw_key)
    assert (await comm.connect())[0]
    await send_json(comm, {"type": "start", **start})
    ready = await comm.receive_json_from(timeout=15)
    assert ready["type"] == "ready", ready
    return comm, ready


# --- finalize with nothing pending ----------------------------------------------------------


def test_the_engine_finalizes_a_session_that_heard_nothing_without_touching_the_vad(engine_models):
    session = StreamingSession(parse_start({}, session_limits()), engine_models)
    assert session.finalize("client") == [] and session.finalize("client") == []
    assert session.accept_audio(b"\0\0" * 1600) == [] and session.finalize("stop") == []


async def test_finalize_with_nothing_pending_is_a_no_op_and_the_session_goes_on(tenant_a, eval_dir, caplog):
    caplog.set_level(logging.INFO)
    comm, _ = await started(tenant_a.raw_key, interim_results=False)
    transcript = Transcript()
    await send_json(comm, {"type": "finalize"})
    await send_json(comm, {"type": "finalize"})
    await send_audio(comm, speech(eval_dir), pace_s=0.01, transcript=transcript)
    await send_json(comm, {"type": "finalize"})
    await send_json(comm, {"type": "finalize"})
    await send_json(comm, {"type": "stop"})
    transcript = await read_until_closed(comm, transcript, timeout=60)
    await comm.disconnect()
    assert transcript.close_code == 1000 and transcript.error is None
    assert len(transcript.finals) == 1 and "clubs" in transcript.finals[0]["text"].lower()
    assert transcript.messages[-1]["type"] == "closed" and transcript.messages[-1]["segments"] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_session_that_ends_without_audio_logs_no_traceback(tenant_a, caplog):
    for ending in ({"type": "stop"}, {"type": "finalize"}):
        comm, _ = await started(tenant_a.raw_key)
        await send_json(comm, ending)
        if ending["type"] == "finalize":
            await comm.disconnect()
        else:
            assert (await read_until_closed(comm, Transcript(), timeout=15)).close_code == 1000
            await comm.disconnect()
    await asyncio.sleep(0.5)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# --- a watchdog that survives database and Redis errors -------------------------------------


class BrokenTable:
    """A real database fault: the sessions table renamed away, so every query on it fails."""

    def __init__(self) -> None:
        self.table = Session._meta.db_table

    def _rename(self, old: str, new: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')

    async def __aenter__(self) -> "BrokenTable":
        await sync_to_async(self._rename)(self.table, f"{self.table}_away")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await sync_to_async(self._rename)(f"{self.table}_away", self.table)


def _refuse_new_sessions(refuse: bool) -> None:
    """A real database fault on one statement only: inserting a session row fails, reads work."""
    with connection.cursor() as cursor:
        if refuse:
            cursor.execute('ALTER TABLE "transcription_session" ADD CONSTRAINT no_new_rows CHECK (false) NOT VALID')
        else:
            cursor.execute('ALTER TABLE "transcription_session" DROP CONSTRAINT no_new_rows')


async def test_a_start_that_fails_half_way_gives_back_its_stream_slot_and_quota(tenant_a):
    """Admitted and given an engine, then the row cannot be written: nothing stays held."""
    from transcription.gateway.live import LedgerKey
    from transcription.quota import get_ledger

    await Tenant.objects.filter(pk=tenant_a.tenant.pk).aupdate(max_concurrent_streams=1)
    await sync_to_async(_refuse_new_sessions)(True)
    try:
        comm = communicator(tenant_a.raw_key)
        await comm.connect()
        await send_json(comm, {"type": "start"})
        failed = await read_until_closed(comm, Transcript(), timeout=15)
        await comm.disconnect()
    finally:
        await sync_to_async(_refuse_new_sessions)(False)
    assert failed.error["code"] == "internal_error"
    assert await get_admission().live_count(tenant_a.tenant.pk) == 0
    assert get_ledger().used(LedgerKey.of(tenant_a.tenant.pk, timezone.now())) == 0.0
    comm, ready = await started(tenant_a.raw_key)  # the one slot is free: admitted at once
    await comm.disconnect()


async def test_the_watchdog_survives_database_errors_and_still_enforces_suspension(tenant_a, settings, caplog):
    settings.ASR_USAGE_FLUSH_S, settings.ASR_IDLE_TIMEOUT_S = 0.2, 30
    comm, ready = await started(tenant_a.raw_key)
    async with BrokenTable():
        await asyncio.sleep(1.5)  # several flushes fail meanwhile
        await send_json(comm, {"type": "keepalive"})
    assert any("retrying" in r.getMessage() for r in caplog.records)
    await asyncio.to_thread(account_services.tenant_suspend, tenant=tenant_a.tenant)
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4003 and transcript.error["code"] == "forbidden"
    assert (await Session.objects.aget(pk=ready["session_id"])).close_reason == "forbidden"


async def test_an_idle_session_is_closed_even_while_the_database_is_down(tenant_a, settings):
    settings.ASR_USAGE_FLUSH_S, settings.ASR_IDLE_TIMEOUT_S = 0.2, 1.0
    comm, ready = await started(tenant_a.raw_key)
    async with BrokenTable():
        transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4008 and transcript.error["code"] == "idle_timeout"


@pytest.fixture
def own_redis():
    """A redis-server of this test's own on a free port (never the machine's shared one)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start() -> subprocess.Popen:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return process
            except OSError:
                time.sleep(0.05)
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError("redis-server did not start")

    state = {"process": start()}

    class Handle:
        url = f"redis://127.0.0.1:{port}/0"

        def stop(self) -> None:
            state["process"].kill()
            state["process"].wait(timeout=10)

        def restart(self) -> None:
            state["process"] = start()

    try:
        yield Handle()
    finally:
        state["process"].kill()
        state["process"].wait(timeout=10)


async def test_the_stream_slot_survives_a_redis_outage_and_the_watchdog_keeps_working(tenant_a, settings, own_redis):
    settings.ASR_ADMISSION_REDIS_URL, settings.ASR_STREAM_TTL_S = own_redis.url, 1.0
    settings.ASR_USAGE_FLUSH_S, settings.ASR_IDLE_TIMEOUT_S = 0.2, 30
    comm, ready = await started(tenant_a.raw_key)
    admission = get_admission()
    assert await admission.live_count(tenant_a.tenant.pk) == 1
    own_redis.stop()  # the restarted server has lost every slot
    await asyncio.sleep(1.5)
    own_redis.restart()
    await send_json(comm, {"type": "keepalive"})
    for _ in range(50):
        if await admission.live_count(tenant_a.tenant.pk) == 1:
            break
        await asyncio.sleep(0.1)
    assert await admission.live_count(tenant_a.tenant.pk) == 1  # the streaming session counts again
    await asyncio.to_thread(account_services.tenant_suspend, tenant=tenant_a.tenant)
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.error["code"] == "forbidden"
    assert await admission.live_count(tenant_a.tenant.pk) == 0


# --- per-connection limits --------------------------------------------------------------------


async def test_a_text_message_flood_is_cut_off_with_rate_limited(tenant_a, eval_dir):
    comm, _ = await started(tenant_a.raw_key)
    for _ in range(500):
        await send_json(comm, {"type": "keepalive"})
    transcript = await read_until_closed(comm, Transcript(), timeout=15)
    await comm.disconnect()
    assert transcript.close_code == 4029 and transcript.error["code"] == "rate_limited"
    assert "per second" in transcript.error["message"]
    # The server goes on serving everyone else.
    other, _ = await started(tenant_a.raw_key)
    await send_json(other, {"type": "stop"})
    assert (await read_until_closed(other, Transcript(), timeout=15)).close_code == 1000
    await other.disconnect()


async def test_a_connection_that_never_starts_is_closed_at_the_start_deadline(tenant_a, settings):
    settings.ASR_START_TIMEOUT_S = 1.0
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    began = time.monotonic()
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4008 and transcript.error["code"] == "start_timeout"
    assert 0.9 <= time.monotonic() - began <= 4
    assert not await Session.objects.filter(tenant=tenant_a.tenant).aexists()


async def test_unstarted_connections_are_capped_per_tenant(tenant_a, tenant_b, settings):
    settings.ASR_MAX_UNSTARTED_PER_TENANT = 2
    waiting = [communicator(tenant_a.raw_key) for _ in range(2)]
    for comm in waiting:
        await comm.connect()
    refused = communicator(tenant_a.raw_key)
    await refused.connect()
    transcript = await read_until_closed(refused, Transcript(), timeout=10)
    await refused.disconnect()
    assert transcript.close_code == 4029 and transcript.error["code"] == "too_many_connections"
    # Another tenant is not affected; a connection that starts, or leaves, frees its place.
    other, _ = await started(tenant_b.raw_key)
    await send_json(waiting[0], {"type": "start"})
    assert (await waiting[0].receive_json_from(timeout=15))["type"] == "ready"
    await waiting[1].disconnect()
    again, _ = await started(tenant_a.raw_key)
    for comm in (other, waiting[0], again):
        await send_json(comm, {"type": "stop"})
        await read_until_closed(comm, Transcript(), timeout=15)
        await comm.disconnect()


async def test_audio_sent_faster_than_the_pace_waits_at_the_socket_and_is_all_transcribed(tenant_a, eval_dir, settings):
    settings.ASR_MAX_AUDIO_SPEED, settings.ASR_AUDIO_BURST_S = 2.0, 1.0
    audio = speech(eval_dir) + speech(eval_dir, "goforward.wav")
    audio_s = len(audio) / 32000
    comm, _ = await started(tenant_a.raw_key, interim_results=False)
    began = time.monotonic()
    await send_audio(comm, audio)  # unpaced: every frame at once
    await send_json(comm, {"type": "stop"})
    transcript = await read_until_closed(comm, Transcript(), timeout=60)
    await comm.disconnect()
    assert time.monotonic() - began >= (audio_s - 1.0) / 2.0 - 0.1  # taken at most twice real time
    assert transcript.close_code == 1000 and len(transcript.finals) == 2
    assert transcript.messages[-1]["audio_seconds"] == pytest.approx(audio_s, abs=0.01)


# --- resume tokens are spent once -----------------------------------------------------------


async def resume_attempt(raw_key: str, ready: dict) -> Transcript:
    comm = communicator(raw_key)
    await comm.connect()
    request = {"session_id": ready["session_id"], "resume_token": ready["resume_token"]}
    await send_json(comm, {"type": "start", "resume": request})
    first = await comm.receive_json_from(timeout=15)
    transcript = Transcript(messages=[first])
    if first["type"] == "ready":
        await send_json(comm, {"type": "stop"})
    transcript = await read_until_closed(comm, transcript, timeout=30)
    await comm.disconnect()
    return transcript


@pytest.mark.parametrize("original", ["dropped", "still connected"])
async def test_of_concurrent_resumes_with_one_token_exactly_one_wins(tenant_a, eval_dir, original):
    comm, ready = await started(tenant_a.raw_key, interim_results=False)
    await send_audio(comm, speech(eval_dir))
    if original == "dropped":
        await comm.disconnect()
    outcomes = await asyncio.gather(*(resume_attempt(tenant_a.raw_key, ready) for _ in range(3)))
    if original == "still connected":
        await comm.disconnect()
    first_types = sorted(t.messages[0]["type"] for t in outcomes)
    assert first_types == ["error", "error", "ready"], [t.messages for t in outcomes]
    assert all(t.error["code"] == "resume_failed" for t in outcomes if t.messages[0]["type"] == "error")
    winner = next(t for t in outcomes if t.messages[0]["type"] == "ready")
    assert winner.messages[0]["resumed"] is True
    indexes = [i async for i in Segment.objects.filter(session_id=ready["session_id"]).values_list("index", flat=True)]
    assert indexes == sorted(set(indexes)) and len(indexes) >= 1


# --- an unknown path ------------------------------------------------------------------------


def test_an_unknown_websocket_path_gets_a_clean_404(django_db_setup):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    key = make_tenant("unknown-path").raw_key
    with gateway_server(extra_env={"ASR_PRELOAD": "0", "REDIS_URL": ""}) as server:
        with pytest.raises(InvalidStatus) as refused:
            connect(
                f"ws://127.0.0.1:{server.port}/ws/v2/nothing", additional_headers={"Authorization": f"Bearer {key}"}
            )
        assert refused.value.response.status_code == 404
        log = server.log_path.read_text()
        assert "No route found" not in log and "Traceback" not in log
