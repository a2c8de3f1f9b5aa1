"""A multichannel session through real Celery workers, Redis and PostgreSQL: when its worker is
killed (kill -9) while one channel's utterance is open and the other's final is already delivered,
the session moves to another worker, the open utterance is replayed and no final is lost or repeated."""

import asyncio

import numpy as np
import pytest
from channels.layers import channel_layers

from bench.evaluation import word_error_rate
from tests.support.audio import clip, to_s16
from tests.support.clusters import use_celery_in_process, worker_cluster
from tests.support.ws import Transcript, communicator, drain_available, read_until_closed, send_json
from transcription.models import Segment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
RATE = 16000
FRAME = 6400  # 100 ms of stereo pcm_s16le


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker):
    with worker_cluster(["w1", "w2"], idle_ttl_s=4.0) as workers:
        yield workers


@pytest.fixture(autouse=True)
def celery_dispatch(settings, cluster, engine_models):
    use_celery_in_process(settings, cluster.prefix)
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def placed(audio: np.ndarray, at_s: float, length: int) -> np.ndarray:
    out = np.zeros(length, dtype=np.float32)
    start = round(at_s * RATE)
    out[start : start + len(audio)] = audio
    return out


async def test_kill_9_while_one_channel_speaks_replays_it_and_repeats_no_final_of_the_other(
    tenant_a, eval_dir, references, cluster
):
    # Channel 0 says "go forward ten meters" (0.5-3.3 s), then "we must find a new home..." from 10 s;
    # channel 1 speaks from 1.5 s to 8.6 s. The worker dies at ~5 s: channel 0's first final is out,
    # channel 1's utterance is open since 1.5 s, before that final's end.
    length = 16 * RATE
    left = placed(clip(eval_dir, "goforward.wav"), 0.5, length) + placed(clip(eval_dir, "new-home.wav"), 10.0, length)
    right = placed(clip(eval_dir, "librivox-0870.wav"), 1.5, length)
    pcm = to_s16(np.stack([left, right], axis=1).reshape(-1))
    killed: list[str] = []
    transcript = Transcript()
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    try:
        await send_json(comm, {"type": "start", "channels": 2, "multichannel": True, "interim_results": False})
        for frame, i in enumerate(range(0, len(pcm), FRAME)):
            await comm.send_to(bytes_data=pcm[i : i + FRAME])
            await asyncio.sleep(0.05)
            await drain_available(comm, transcript)
            first_final_out = any(f["channel"] == 0 for f in transcript.finals)
            if frame >= 50 and first_final_out and not killed:
                assert not any(f["channel"] == 1 for f in transcript.finals), "channel 1 must still be speaking"
                holder = next(w for w, sessions in cluster.sessions_by_worker().items() if sessions)
                cluster.kill9(holder)
                killed.append(holder)
        await send_json(comm, {"type": "stop"})
        await read_until_closed(comm, transcript, timeout=90)
    finally:
        await comm.disconnect(timeout=30)

    assert killed and transcript.close_code == 1000 and transcript.messages[-1]["type"] == "closed"
    finals = [f for f in transcript.finals if f["text"].strip()]
    by_channel = {c: [f["text"] for f in finals if f["channel"] == c] for c in (0, 1)}
    assert len(by_channel[0]) == 2 and len(by_channel[1]) == 1, by_channel
    expected = {0: ["goforward.wav", "new-home.wav"], 1: ["librivox-0870.wav"]}
    for channel, names in expected.items():
        assert word_error_rate([references[n] for n in names], by_channel[channel]) <= 0.2, by_channel
    assert [f["segment"] for f in transcript.finals] == list(range(len(transcript.finals)))
    session_id = transcript.messages[0]["session_id"]
    stored = [(s.index, s.channel, s.text) async for s in Segment.objects.filter(session_id=session_id)]
    assert sorted(stored) == [(f["segment"], f["channel"], f["text"]) for f in transcript.finals]
    cluster.start(killed[0])
    await asyncio.to_thread(cluster.wait_live, {"w1", "w2"})
