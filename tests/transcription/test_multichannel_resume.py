"""A multichannel session resumed after a dropped connection: the channel that was mid-utterance
finishes it, the other's final is not repeated, and the session meters every channel."""

import asyncio

import numpy as np
import pytest

from bench.evaluation import word_error_rate
from tests.support.audio import clip, to_s16
from tests.support.ws import Transcript, communicator, drain_available, read_until_closed, send_audio, send_json
from transcription.models import Segment, Session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("models_loaded")]
RATE = 16000
START = {"channels": 2, "multichannel": True, "interim_results": False}


async def open_session(raw_key: str, start: dict) -> tuple:
    comm = communicator(raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start", **start})
    ready = await comm.receive_json_from(timeout=15)
    assert ready["type"] == "ready", ready
    return comm, ready


async def test_a_dropped_multichannel_session_resumes_and_each_channel_goes_on(tenant_a, eval_dir, references):
    length = 11 * RATE
    left, right = np.zeros(length, dtype=np.float32), np.zeros(length, dtype=np.float32)
    cards = clip(eval_dir, "cards-001.wav")
    left[: len(cards)] = cards
    talk = clip(eval_dir, "librivox-0870.wav")
    right[RATE * 3 // 2 : RATE * 3 // 2 + len(talk)] = talk
    pcm = to_s16(np.stack([left, right], axis=1).reshape(-1))
    cut = 5 * RATE * 4  # 5 s in: channel 0's final is out, channel 1 is mid-sentence

    comm, ready = await open_session(tenant_a.raw_key, START)
    before = Transcript()
    await send_audio(comm, pcm[:cut], frame_bytes=6400, pace_s=0.02, transcript=before)
    await asyncio.sleep(1.0)
    await drain_available(comm, before)
    await comm.disconnect(timeout=10)

    resume = {"session_id": ready["session_id"], "resume_token": ready["resume_token"]}
    comm, resumed = await open_session(tenant_a.raw_key, {**START, "resume": resume})
    after = Transcript()
    try:
        assert resumed["resumed"] is True and resumed["resume_from_s"] == pytest.approx(5.0, abs=0.01)
        await send_audio(comm, pcm[cut:], frame_bytes=6400)
        await send_json(comm, {"type": "stop"})
        await read_until_closed(comm, after, timeout=60)
    finally:
        await comm.disconnect()

    finals = {f["segment"]: f for f in before.finals + after.finals if f["text"].strip()}
    assert sorted((f["channel"], f["segment"]) for f in finals.values()) == [(0, 0), (1, 1)], finals
    assert word_error_rate(["ten of clubs"], [finals[0]["text"]]) <= 0.05
    assert word_error_rate([references["librivox-0870.wav"]], [finals[1]["text"]]) <= 0.1
    session = await Session.objects.aget(pk=ready["session_id"])
    assert session.status == "closed" and session.channels == 2
    assert session.audio_seconds == pytest.approx(2 * length / RATE, abs=1e-3)
    stored = [(s.index, s.channel) async for s in Segment.objects.filter(session=session).order_by("index")]
    assert stored == [(0, 0), (1, 1)]
