"""The benchmark's Deepgram client: one real-time session against the real server, measured as v1's is."""

import asyncio

import pytest

from asrclient import StreamResult, WavAudio, stream_audio
from bench.deepgram_stream import listen_url, stream_deepgram
from bench.evaluation import ConcatenatedSession, concatenate_clips, load_manifest
from bench.metrics import analyse
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import Segment, Session

pytestmark = pytest.mark.django_db(transaction=True)

CLIPS = ["cards-005.wav", "goforward.wav"]
START = {"endpointing_ms": 800, "language": "en", "interim_results": True}  # what `bench load` asks for


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": ""}) as live:
        yield live


@pytest.fixture(scope="module")
def session(eval_dir) -> ConcatenatedSession:
    entries = [e for e in load_manifest(eval_dir / "real") if e.name in CLIPS]
    return concatenate_clips(sorted(entries, key=lambda e: CLIPS.index(e.name)), gap_s=1.0)


def finals(result: StreamResult) -> list[str]:
    return [m.data["text"] for m in result.of_type("final") if m.data["text"]]


def test_the_listen_url_asks_for_v1_s_start_options_and_refuses_one_it_cannot_ask_for():
    url = listen_url("ws://127.0.0.1:8000/ws/v1/transcribe", sample_rate=16000, start_options=START)
    assert url == (
        "ws://127.0.0.1:8000/v1/listen?encoding=linear16&sample_rate=16000&channels=1"
        "&interim_results=true&endpointing=800&language=en"
    )
    with pytest.raises(ValueError, match="hotwords"):
        listen_url("ws://h/ws/v1/transcribe", sample_rate=16000, start_options={"hotwords": ["x"]})


async def test_a_deepgram_session_is_recorded_and_measured_as_the_same_v1_session(server, session):
    tenant = await asyncio.to_thread(make_tenant, "bench-deepgram")
    audio = WavAudio.from_float(session.audio, session.sample_rate)
    options = {"chunk_ms": 100, "realtime": True, "start_options": START}
    deepgram = await stream_deepgram(server.url, tenant.raw_key, audio, **options)
    v1 = await stream_audio(server.url, tenant.raw_key, audio, **options)

    assert deepgram.problem() is None and v1.problem() is None
    assert finals(deepgram) == finals(v1) and len(finals(v1)) >= len(CLIPS)
    final_segments = [m.data["segment"] for m in deepgram.of_type("final")]
    assert final_segments == list(range(len(final_segments)))  # numbered as v1's server numbers them
    assert {m.data["segment"] for m in deepgram.of_type("partial")} <= set(final_segments)
    measured = analyse(deepgram, session)
    assert measured["counts"]["clips_without_final"] == 0 and measured["counts"]["partials"] > 0
    assert measured["final_latency_ms"]["n"] == len(CLIPS) and 0 < measured["final_latency_ms"]["max"] < 5000
    assert measured["counts"]["final_reasons"] == {"vad": len(finals(v1))}  # speech_final: each pause ended one

    closed = deepgram.of_type("closed")[0].data
    assert closed["session_id"] == deepgram.messages[0].data["session_id"]  # dg-request-id, then Metadata's
    row = await asyncio.to_thread(Session.objects.get, pk=closed["session_id"], tenant=tenant.tenant)
    stored = await asyncio.to_thread(Segment.objects.filter(session=row).count)
    assert row.protocol == "deepgram" and stored == closed["segments"] == len(final_segments)
