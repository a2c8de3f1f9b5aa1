"""Resumable sessions: a dropped client continues the same session, and nothing it said is lost."""

import asyncio
import json

import numpy as np
import pytest

from bench.evaluation import word_error_rate
from tests.support.audio import clip, to_s16
from tests.support.ws import Transcript, communicator, drain_available, read_until_closed, send_audio, send_json
from transcription.models import Segment, Session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("models_loaded")]
SILENCE = np.zeros(24000, dtype=np.float32)  # 1.5 s


async def open_session(raw_key: str, start: dict) -> tuple:
    comm = communicator(raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start", **start})
    ready = await comm.receive_json_from(timeout=15)
    assert ready["type"] == "ready", ready
    return comm, ready


async def test_a_dropped_client_resumes_mid_utterance_and_the_utterance_survives(tenant_a, eval_dir):
    first, second = clip(eval_dir, "cards-001.wav"), clip(eval_dir, "librivox-0870.wav")
    comm, ready = await open_session(tenant_a.raw_key, {"interim_results": False})
    before = Transcript()
    await send_audio(
        comm, to_s16(np.concatenate([first, SILENCE, second[: 16000 * 3]])), pace_s=0.02, transcript=before
    )
    await asyncio.sleep(1.0)
    await drain_available(comm, before)
    await comm.disconnect(timeout=10)  # network blip in the middle of "and mister john dashwood ..."
    session = await Session.objects.aget(pk=ready["session_id"])
    assert session.status == "interrupted"

    comm, resumed = await open_session(
        tenant_a.raw_key,
        {
            "interim_results": False,
            "resume": {"session_id": ready["session_id"], "resume_token": ready["resume_token"]},
        },
    )
    try:
        assert resumed["resumed"] is True and resumed["session_id"] == ready["session_id"]
        assert resumed["resume_from_s"] == pytest.approx((len(first) + len(SILENCE) + 16000 * 3) / 16000, abs=0.01)
        assert resumed["resume_token"] != ready["resume_token"]
        after = Transcript()
        await send_audio(comm, to_s16(np.concatenate([second[16000 * 3 :], SILENCE])))
        await send_json(comm, {"type": "stop"})
        await read_until_closed(comm, after, timeout=60)
    finally:
        await comm.disconnect()
    finals = {f["segment"]: f for f in before.finals + after.finals}
    assert sorted(finals) == [0, 1]
    assert (
        word_error_rate(
            ["ten of clubs", clip_reference(eval_dir, "librivox-0870.wav")], [finals[0]["text"], finals[1]["text"]]
        )
        <= 0.05
    )
    session = await Session.objects.aget(pk=ready["session_id"])
    assert session.status == "closed" and session.close_reason == "stop"
    assert session.audio_seconds == pytest.approx(
        (len(first) + len(SILENCE) + len(second) + len(SILENCE)) / 16000, abs=1e-3
    )
    assert await Segment.objects.filter(session=session).acount() == 2
    assert after.messages[-1]["type"] == "closed" and after.messages[-1]["segments"] == 2


def clip_reference(eval_dir, name: str) -> str:
    for line in (eval_dir / "real" / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["audio"] == name:
            return record["text"]
    raise KeyError(name)


async def test_finals_produced_while_away_are_sent_on_resume(tenant_a, eval_dir):
    comm, ready = await open_session(tenant_a.raw_key, {"interim_results": False})
    await send_audio(comm, to_s16(np.concatenate([clip(eval_dir, "goforward.wav"), SILENCE])))
    await comm.disconnect(timeout=10)  # gone before the final could arrive
    await asyncio.sleep(2.0)
    comm, resumed = await open_session(
        tenant_a.raw_key, {"resume": {"session_id": ready["session_id"], "resume_token": ready["resume_token"]}}
    )
    try:
        final = await comm.receive_json_from(timeout=10)
        assert final["type"] == "final" and final["segment"] == 0
        assert word_error_rate(["go forward ten meters"], [final["text"]]) == 0.0
        assert resumed["next_segment"] == 1
        await send_json(comm, {"type": "stop"})
        closing = await read_until_closed(comm, Transcript(), timeout=30)
    finally:
        await comm.disconnect()
    assert closing.messages[-1]["type"] == "closed" and closing.messages[-1]["segments"] == 1


@pytest.mark.parametrize("tamper", ["token", "tenant", "session"])
async def test_resume_needs_the_right_token_tenant_and_session(tenant_a, tenant_b, tamper):
    comm, ready = await open_session(tenant_a.raw_key, {})
    await comm.disconnect(timeout=10)
    request = {"session_id": ready["session_id"], "resume_token": ready["resume_token"]}
    key = tenant_a.raw_key
    if tamper == "token":
        # Change the first character to a different one: a fixed "x" left a token that already
        # began with "x" untouched (1 in 64 runs), and the server rightly resumed it.
        first = "y" if ready["resume_token"].startswith("x") else "x"
        request["resume_token"] = first + ready["resume_token"][1:]
        assert request["resume_token"] != ready["resume_token"]
    elif tamper == "tenant":
        key = tenant_b.raw_key
    else:
        request["session_id"] = "00000000-0000-0000-0000-000000000000"
    comm = communicator(key)
    await comm.connect()
    await send_json(comm, {"type": "start", "resume": request})
    refused = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert refused.close_code == 4400 and refused.error["code"] == "resume_failed"
    assert not refused.of_type("ready")


async def test_after_the_grace_period_the_open_utterance_is_stored_and_resume_is_refused(tenant_a, eval_dir, settings):
    settings.ASR_RESUME_GRACE_S = 1.0
    comm, ready = await open_session(tenant_a.raw_key, {"interim_results": False})
    await send_audio(comm, to_s16(clip(eval_dir, "librivox-0870.wav")[: 16000 * 3]))
    await comm.disconnect(timeout=10)
    await asyncio.sleep(3.0)
    session = await Session.objects.aget(pk=ready["session_id"])
    assert session.status == "closed" and session.close_reason == "disconnect"
    segments = [s async for s in session.segments.all()]
    assert len(segments) == 1 and segments[0].reason == "disconnect" and "dashwood" in segments[0].text.lower()
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(
        comm, {"type": "start", "resume": {"session_id": ready["session_id"], "resume_token": ready["resume_token"]}}
    )
    refused = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert refused.error["code"] == "resume_failed"


async def test_a_client_that_reconnects_before_the_server_noticed_takes_the_session_over(tenant_a, eval_dir):
    old, ready = await open_session(tenant_a.raw_key, {"interim_results": False})
    new, resumed = await open_session(
        tenant_a.raw_key, {"resume": {"session_id": ready["session_id"], "resume_token": ready["resume_token"]}}
    )
    try:
        left = await read_until_closed(old, Transcript(), timeout=10)
        assert left.error["code"] == "resumed_elsewhere" and left.close_code == 1000
        await send_audio(new, to_s16(np.concatenate([clip(eval_dir, "goforward.wav"), SILENCE])))
        await send_json(new, {"type": "stop"})
        done = await read_until_closed(new, Transcript(), timeout=30)
    finally:
        await old.disconnect()
        await new.disconnect()
    assert resumed["resumed"] is True
    assert [f["segment"] for f in done.finals] == [0] and done.close_code == 1000
