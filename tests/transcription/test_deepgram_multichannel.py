"""Deepgram's ``multichannel=true&channels=2`` on the live API, driven by the official deepgram-sdk
against the real server: each channel transcribed on its own, results tagged ``channel_index``."""

import asyncio
import json
import wave
from typing import Any

import numpy as np
import pytest
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results, ListenV1SpeechStarted, ListenV1UtteranceEnd

from bench.evaluation import word_error_rate
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import Segment, Session

pytestmark = pytest.mark.django_db(transaction=True)

FRAME = 6400  # 100 ms of 16 kHz stereo pcm_s16le


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": ""}) as live:
        yield live


@pytest.fixture
def tenant(server):
    return make_tenant("deepgram-multichannel")


@pytest.fixture(scope="module")
def two_talkers(eval_dir) -> tuple[bytes, dict[int, str]]:
    """The stereo clip as interleaved pcm_s16le, 3 s of silence after it (for UtteranceEnd), and each
    channel's reference."""
    entry = json.loads((eval_dir / "stereo" / "manifest.jsonl").read_text().splitlines()[0])
    with wave.open(str(eval_dir / "stereo" / entry["audio"])) as wav:
        pcm = wav.readframes(wav.getnframes())
    return pcm + bytes(3 * 2 * 2 * 16000), {c["channel"]: c["text"] for c in entry["channels"]}


def client_for(server, raw_key: str) -> AsyncDeepgramClient:
    ws = server.http_url.replace("http", "ws", 1)
    environment = DeepgramClientEnvironment(base=server.http_url, production=ws, agent=ws, agent_rest=server.http_url)
    return AsyncDeepgramClient(api_key=raw_key, environment=environment)


async def collect(socket: Any, into: list[Any]) -> None:
    async for message in socket:
        into.append(message)


def stored(session_id: str) -> tuple[Session, list[tuple[int | None, str]]]:
    rows = Segment.objects.filter(session_id=session_id).order_by("index")
    return Session.objects.get(pk=session_id), [(s.channel, s.text.strip()) for s in rows]


async def warmed_up(server, raw_key: str) -> None:
    """A short session first, so the server has its models loaded before a stream is timed."""
    connect = client_for(server, raw_key).listen.v1.connect
    async with connect(
        model="nova-3", encoding="linear16", sample_rate=16000, channels=2, multichannel="true"
    ) as socket:
        reader = asyncio.create_task(collect(socket, []))
        await socket.send_media(bytes(FRAME))
        await socket.send_close_stream()
        await asyncio.wait_for(reader, 120)


async def test_multichannel_results_carry_channel_index_and_each_channel_its_own_transcript(
    server, tenant, two_talkers
):
    pcm, references = two_talkers
    await warmed_up(server, tenant.raw_key)
    messages: list[Any] = []
    options = dict(
        model="nova-3", encoding="linear16", sample_rate=16000, channels=2, multichannel="true",
        interim_results="true", vad_events="true", utterance_end_ms="1000",
    )  # fmt: skip
    async with client_for(server, tenant.raw_key).listen.v1.connect(**options) as socket:
        reader = asyncio.create_task(collect(socket, messages))
        for i in range(0, len(pcm), FRAME):
            await socket.send_media(pcm[i : i + FRAME])
            await asyncio.sleep(0.1)
        await socket.send_close_stream()
        await asyncio.wait_for(reader, 60)

    results = [m for m in messages if isinstance(m, ListenV1Results)]
    finals = [r for r in results if r.is_final and r.channel.alternatives[0].transcript]
    assert {tuple(r.channel_index) for r in results} == {(0, 2), (1, 2)}
    for channel in (0, 1):
        text = " ".join(r.channel.alternatives[0].transcript for r in finals if r.channel_index[0] == channel)
        assert word_error_rate([references[channel]], [text]) <= 0.15, (channel, text)
    started = {tuple(m.channel) for m in messages if isinstance(m, ListenV1SpeechStarted)}
    assert started == {(0, 2), (1, 2)}
    ended = {tuple(m.channel) for m in messages if isinstance(m, ListenV1UtteranceEnd)}
    assert ended <= {(0, 2), (1, 2)} and ended, "each channel's utterance ends on its own"
    metadata = messages[-1]
    assert isinstance(metadata, ListenV1Metadata) and metadata.channels == 2
    assert metadata.duration == pytest.approx(len(pcm) / 64000, abs=0.01), "the audio's length, not what is metered"

    session, segments = await asyncio.to_thread(stored, metadata.request_id)
    assert session.channels == 2 and session.audio_seconds == pytest.approx(2 * metadata.duration, abs=0.01)
    assert segments == [(r.channel_index[0], r.channel.alternatives[0].transcript) for r in finals]


async def test_without_multichannel_stereo_is_mixed_down_as_before(server, tenant, two_talkers):
    pcm, _ = two_talkers
    messages: list[Any] = []
    connect = client_for(server, tenant.raw_key).listen.v1.connect
    async with connect(model="nova-3", encoding="linear16", sample_rate=16000, channels=2) as socket:
        reader = asyncio.create_task(collect(socket, messages))
        await socket.send_media(pcm[: len(pcm) - len(pcm) % FRAME])
        await socket.send_close_stream()
        await asyncio.wait_for(reader, 60)
    results = [m for m in messages if isinstance(m, ListenV1Results)]
    assert results and all(r.channel_index == [0, 1] for r in results)
    metadata = messages[-1]
    assert isinstance(metadata, ListenV1Metadata) and metadata.channels == 2
    session, segments = await asyncio.to_thread(stored, metadata.request_id)
    assert session.channels == 1 and all(channel is None for channel, _ in segments)
    assert session.audio_seconds == pytest.approx(metadata.duration, abs=0.01)
    assert np.isclose(metadata.duration, (len(pcm) - len(pcm) % FRAME) / 64000, atol=0.01)
