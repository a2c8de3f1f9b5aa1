"""The outbox: a final reaches the client at once while PostgreSQL stalls, and reaches the database
once it is back, exactly once; journals of dead processes are written out on the next start."""

import asyncio
import json
import threading
import time
import uuid

import psycopg
import pytest
from django.db import connection

from tests.support.audio import clips_s16
from tests.support.ws import Transcript, communicator, read_until_closed, send_audio, send_json
from transcription import services
from transcription.engine import TranscriptEvent
from transcription.gateway import outbox
from transcription.gateway.outbox import Outbox
from transcription.models import Segment, Session

pytestmark = [pytest.mark.django_db(transaction=True)]

CLIPS = ["cards-005.wav", "goforward.wav", "librivox-0880.wav", "ldc93s1.wav"]


def lock_segments(seconds: float, locked: threading.Event) -> None:
    """Hold exclusive locks on the sessions and segments tables of this test's database: every query
    of them (a final stored, usage metered) stalls."""
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("dbname", "user", "host", "port") if params.get(k)}
    with psycopg.connect(**dsn) as other:
        other.execute("LOCK TABLE transcription_segment, transcription_session IN ACCESS EXCLUSIVE MODE")
        locked.set()
        time.sleep(seconds)


@pytest.mark.usefixtures("models_loaded")
async def test_finals_reach_the_client_at_once_while_the_database_stalls_and_are_stored_once_after(
    tenant_a, eval_dir, settings
):
    settings.ASR_OUTBOX_WAIT_S, settings.ASR_USAGE_FLUSH_S = 0.5, 0.5  # the flush stalls at once
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    transcript = Transcript()
    await send_json(comm, {"type": "start", "interim_results": False})
    ready = await comm.receive_json_from(timeout=10)
    assert ready["type"] == "ready"  # its row is written before the stall
    locked, stall_s = threading.Event(), 20.0
    locker = threading.Thread(target=lock_segments, args=(stall_s, locked))
    locker.start()
    await asyncio.to_thread(locked.wait, 10)
    stall_started = time.monotonic()
    pcm = clips_s16(eval_dir, CLIPS, gap_s=1.5)
    await send_audio(comm, pcm, frame_bytes=6400, pace_s=0.05, transcript=transcript)  # 4x real time
    await send_json(comm, {"type": "stop"})
    await read_until_closed(comm, transcript, timeout=90)
    await comm.disconnect()
    finished = time.monotonic()

    assert transcript.close_code == 1000 and transcript.error is None
    finals = transcript.finals
    assert len(finals) >= 3
    session_id = ready["session_id"]
    # The whole session, finals and close included, ran inside the stall: nothing waited for the database.
    assert finished - stall_started < stall_s - 1, f"the session took {finished - stall_started:.1f} s"
    await asyncio.to_thread(locker.join)
    await asyncio.to_thread(outbox.get_outbox().wait_idle, 30)
    stored = [s async for s in Segment.objects.filter(session_id=session_id).order_by("index")]
    assert [s.index for s in stored] == [f["segment"] for f in finals]
    assert [s.text for s in stored] == [f["text"] for f in finals]
    session = await Session.objects.aget(pk=session_id)
    assert session.status == "closed" and session.close_reason == "stop"


def _final(index: int) -> TranscriptEvent:
    return TranscriptEvent(index, f"utterance {index}", index * 2.0, index * 2.0 + 1.5, is_final=True, reason="vad")


def _session(tenant) -> Session:
    return services.session_start(tenant_id=tenant.pk, api_key_id=None, language="en", engine="t", sample_rate=16000)


def test_a_dead_processs_journal_is_written_out_once_and_removed(tenant_a, tmp_path):
    session = _session(tenant_a.tenant)
    ops = [outbox.final_op(tenant_a.tenant.pk, session.pk, _final(i)) for i in range(3)]
    ops.append(outbox.close_op(tenant_a.tenant.pk, session.pk, "disconnect", 7.5, session.resume_token_hash))
    journal = tmp_path / "outbox-99999-deadbeef.jsonl"
    lines = [json.dumps(op) + "\n" for op in ops + ops[:2]]  # written twice: a replay must not duplicate
    journal.write_text("".join(lines) + '{"kind": "final", "tena')  # the dead process's torn last line

    box = Outbox(tmp_path)
    try:
        box.wait_idle(30)
    finally:
        box.close()
    assert not journal.exists()
    assert list(Segment.objects.filter(session=session).values_list("index", flat=True)) == [0, 1, 2]
    session.refresh_from_db()
    assert session.status == "closed" and session.audio_seconds == 7.5


def test_a_journal_whose_process_is_alive_is_left_alone(tenant_a, tmp_path):
    session = _session(tenant_a.tenant)
    alive = Outbox(tmp_path)  # holds its journal's lock, as a running gateway does
    try:
        with alive.cond:  # journal an op without letting it be written yet
            alive.file.write(json.dumps(outbox.final_op(tenant_a.tenant.pk, session.pk, _final(0))) + "\n")
            alive.file.flush()
            other = Outbox(tmp_path)
            other.wait_idle(5)
            other.close()
        assert alive.path.exists() and not Segment.objects.exists()
    finally:
        alive.close()


async def test_an_operation_the_database_rejects_for_good_does_not_block_the_others(tenant_a, tmp_path):
    session = await asyncio.to_thread(_session, tenant_a.tenant)
    box = Outbox(tmp_path)
    try:
        missing = outbox.final_op(tenant_a.tenant.pk, uuid.uuid4(), _final(0))  # no such session
        assert await box.put(missing, wait_s=5)
        assert await box.put(outbox.final_op(tenant_a.tenant.pk, session.pk, _final(0)), wait_s=5)
        cross_tenant = outbox.final_op(tenant_a.tenant.pk + 1000, session.pk, _final(1))
        assert await box.put(cross_tenant, wait_s=5)
    finally:
        await asyncio.to_thread(box.close)
    assert [s.index async for s in Segment.objects.filter(session=session)] == [0]
