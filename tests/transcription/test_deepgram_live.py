"""Deepgram's live API (``/v1/listen``), driven by the official `deepgram-sdk`, unmodified, against the real server."""

import asyncio
import json
from typing import Any

import pytest
import websockets
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from deepgram.listen.v1.types import (
    ListenV1Error,
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)

from accounts.models import Tenant
from bench.evaluation import word_error_rate
from tests.support.audio import clip, clips_s16, to_s16
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import Segment, Session

pytestmark = pytest.mark.django_db(transaction=True)

CLIPS = ["goforward.wav", "ldc93s1.wav"]
LONG_CLIPS = ["librivox-0870.wav", "ldc93s1.wav"]  # a 7 s utterance has interim results even on a busy machine
CHUNK = 3200  # 100 ms of 16 kHz pcm_s16le


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": "", "ASR_RESUME_GRACE_S": "30"}) as live:
        yield live


@pytest.fixture
def tenant(server):
    return make_tenant("deepgram-sdk")


def client_for(server, raw_key: str) -> AsyncDeepgramClient:
    ws = server.http_url.replace("http", "ws", 1)
    environment = DeepgramClientEnvironment(base=server.http_url, production=ws, agent=ws, agent_rest=server.http_url)
    return AsyncDeepgramClient(api_key=raw_key, environment=environment)


async def stream(socket: Any, pcm: bytes, *, pause: float = 0.02) -> None:
    for i in range(0, len(pcm), CHUNK):
        await socket.send_media(pcm[i : i + CHUNK])
        await asyncio.sleep(pause)


async def collect(socket: Any, into: list[Any]) -> None:
    async for message in socket:
        into.append(message)


def stored_session(tenant: Tenant) -> tuple[Session, list[str]]:
    session = Session.objects.get(tenant=tenant)
    return session, list(Segment.objects.filter(session=session).order_by("index").values_list("text", flat=True))


def finals(messages: list[Any]) -> list[ListenV1Results]:
    return [m for m in messages if isinstance(m, ListenV1Results) and m.is_final]


def transcript(results: list[ListenV1Results]) -> str:
    return " ".join(r.channel.alternatives[0].transcript for r in results if r.channel.alternatives[0].transcript)


async def test_a_live_stream_gives_interim_and_final_results_utterance_ends_and_metadata(
    server, tenant, eval_dir, references
):
    pcm = clips_s16(eval_dir, LONG_CLIPS, gap_s=2.0)
    messages: list[Any] = []
    options = dict(
        model="nova-3", encoding="linear16", sample_rate=16000, channels=1, language="en-US", interim_results="true",
        utterance_end_ms="1000", vad_events="true", punctuate="true", smart_format="true", endpointing=500,
    )  # fmt: skip
    async with client_for(server, tenant.raw_key).listen.v1.connect(**options) as socket:
        reader = asyncio.create_task(collect(socket, messages))
        await stream(socket, pcm, pause=0.1)  # real time: interim results come as the words do
        await socket.send_close_stream()
        await asyncio.wait_for(reader, 60)

    final_results = finals(messages)
    assert word_error_rate([" ".join(references[c] for c in LONG_CLIPS)], [transcript(final_results)]) <= 0.2
    assert any(isinstance(m, ListenV1Results) and not m.is_final for m in messages), "no interim results"
    assert sum(1 for r in final_results if r.speech_final) >= 2, "each clip's pause ends its utterance"
    assert all(r.channel_index == [0, 1] and r.metadata.request_id for r in final_results)
    words = [w for r in final_results for w in r.channel.alternatives[0].words]
    assert [w.punctuated_word for w in words] == transcript(final_results).split()
    assert all(
        r.start <= w.start <= w.end <= r.start + r.duration + 0.01
        for r in final_results
        for w in r.channel.alternatives[0].words
    )
    assert len([m for m in messages if isinstance(m, ListenV1SpeechStarted)]) >= 2
    utterance_ends = [m for m in messages if isinstance(m, ListenV1UtteranceEnd)]
    assert len(utterance_ends) >= 2 and all(u.last_word_end > 0 for u in utterance_ends)
    metadata = messages[-1]
    assert isinstance(metadata, ListenV1Metadata)
    assert metadata.duration == pytest.approx(len(pcm) / 32000, abs=0.01) and metadata.channels == 1

    session, stored = await asyncio.to_thread(stored_session, tenant.tenant)
    assert session.protocol == "deepgram" and session.status == "closed" and session.close_reason == "stop"
    assert str(session.id) == metadata.request_id == final_results[0].metadata.request_id
    assert [t.strip() for t in stored] == [r.channel.alternatives[0].transcript for r in final_results]


async def test_finalize_ends_the_utterance_and_the_stream_goes_on(server, tenant, eval_dir, references):
    first, second = to_s16(clip(eval_dir, CLIPS[0])), clips_s16(eval_dir, [CLIPS[1]], gap_s=2.0)
    messages: list[Any] = []
    connect = client_for(server, tenant.raw_key).listen.v1.connect
    async with connect(model="nova-3", encoding="linear16", sample_rate=16000, endpointing="false") as socket:
        reader = asyncio.create_task(collect(socket, messages))
        await stream(socket, first)
        await socket.send_finalize()
        for _ in range(300):
            if finals(messages):
                break
            await asyncio.sleep(0.1)
        from_finalize = finals(messages)
        assert len(from_finalize) == 1 and from_finalize[0].from_finalize and not from_finalize[0].speech_final
        assert word_error_rate([references[CLIPS[0]]], [transcript(from_finalize)]) <= 0.2
        await stream(socket, second)
        await socket.send_keep_alive()
        await socket.send_close_stream()
        await asyncio.wait_for(reader, 60)
    after = finals(messages)[1:]
    assert word_error_rate([references[CLIPS[1]]], [transcript(after)]) <= 0.2
    assert not any(isinstance(m, ListenV1Results) and not m.is_final for m in messages), "interim_results is off"
    assert isinstance(messages[-1], ListenV1Metadata)


async def test_refusals_are_deepgram_s_http_statuses(server, tenant):
    with pytest.raises(ApiError) as bad_key:
        async with client_for(server, "asr_not-a-key").listen.v1.connect(model="nova-3", encoding="linear16"):
            pass
    assert bad_key.value.status_code == 401

    connect = client_for(server, tenant.raw_key).listen.v1.connect
    with pytest.raises(ApiError) as diarize:
        async with connect(model="nova-3", encoding="linear16", sample_rate=16000, diarize="true"):
            pass
    assert diarize.value.status_code == 400
    with pytest.raises(ApiError) as opus:
        async with connect(model="nova-3", encoding="amr-wb", sample_rate=16000):
            pass
    assert opus.value.status_code == 400

    await asyncio.to_thread(Tenant.objects.filter(pk=tenant.tenant.pk).update, monthly_audio_seconds_quota=0)
    with pytest.raises(ApiError) as quota:
        async with connect(model="nova-3", encoding="linear16", sample_rate=16000):
            pass
    assert quota.value.status_code == 402
    await asyncio.to_thread(
        Tenant.objects.filter(pk=tenant.tenant.pk).update, monthly_audio_seconds_quota=3600, max_concurrent_streams=1
    )
    async with connect(model="nova-3", encoding="linear16", sample_rate=16000) as first:
        with pytest.raises(ApiError) as cap:
            async with connect(model="nova-3", encoding="linear16", sample_rate=16000):
                pass
        assert cap.value.status_code == 429
        await first.send_close_stream()
        assert isinstance([m async for m in first][-1], ListenV1Metadata)
    assert not await asyncio.to_thread(lambda: Session.objects.filter(tenant=tenant.tenant, status="active").exists())


async def test_a_browser_s_key_in_the_subprotocol_and_a_wav_stream_without_encoding(
    server, tenant, eval_dir, references
):
    """Browsers send ``Sec-WebSocket-Protocol: token, <key>``; without ``encoding``, the WAV header says the format."""
    wav = (eval_dir / "real" / CLIPS[0]).read_bytes()
    url = server.http_url.replace("http", "ws", 1) + "/v1/listen?model=nova-3&language=en"
    async with websockets.connect(url, subprotocols=["token", tenant.raw_key]) as ws:
        assert ws.subprotocol == "token"
        for i in range(0, len(wav), 8191):  # odd sizes: samples split across messages
            await ws.send(wav[i : i + 8191])
        await ws.send(json.dumps({"type": "Configure", "keyterms": ["Lincoln"]}))
        await ws.send("not json")
        await ws.send(json.dumps({"type": "CloseStream"}))
        messages = [json.loads(m) async for m in ws]
    kinds = [m["type"] for m in messages]
    assert (
        "ConfigureFailure" in kinds
        and {"type": "Error", "variant": "SchemaError"}.items()
        <= next(m for m in messages if m["type"] == "Error").items()
    )
    results = [m for m in messages if m["type"] == "Results" and m["is_final"]]
    text = " ".join(r["channel"]["alternatives"][0]["transcript"] for r in results)
    assert word_error_rate([references[CLIPS[0]]], [text]) <= 0.2
    assert kinds[-1] == "Metadata" and ws.close_code == 1000


async def test_bad_audio_ends_the_stream_with_an_error_and_the_server_keeps_serving(server, tenant, eval_dir):
    url = server.http_url.replace("http", "ws", 1) + "/v1/listen?encoding=linear16&sample_rate=16000"
    headers = {"Authorization": f"Token {tenant.raw_key}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")  # a WAV header that is not one
        messages = []
        with pytest.raises(websockets.ConnectionClosedError):
            while True:
                messages.append(json.loads(await ws.recv()))
    assert messages[-1]["type"] == "Error" and messages[-1]["variant"] == "bad_audio"
    assert ws.close_code == 1008
    messages = []
    async with client_for(server, tenant.raw_key).listen.v1.connect(model="nova-3", encoding="linear16") as socket:
        reader = asyncio.create_task(collect(socket, messages))
        await stream(socket, clips_s16(eval_dir, [CLIPS[1]], gap_s=1.0))
        await socket.send_close_stream()
        await asyncio.wait_for(reader, 60)
    assert transcript(finals(messages)) and not any(isinstance(m, ListenV1Error) for m in messages)
    assert isinstance(messages[-1], ListenV1Metadata)
