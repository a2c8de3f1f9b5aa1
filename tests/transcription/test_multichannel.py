"""Per-channel transcription (``multichannel``) through the real server, models and eval audio:
each channel its own utterance stream, results and stored segments tagged with their channel,
transcripts as channel turns, and every channel metered."""

import asyncio
import contextlib
import json
import wave
from typing import Any

import numpy as np
import pytest
import websockets
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Membership, Tenant
from bench.evaluation import normalize_text, word_error_rate
from tests.support.audio import clip, silence, to_s16
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from tests.support.ws import receive_until
from transcription import selectors
from transcription.models import Segment, Session

pytestmark = pytest.mark.django_db(transaction=True)

RATE = 16000
FRAME_S = 0.1
# Clips of ../shared/eval/real on alternating channels: an agent (0) and a caller (1) taking turns.
CALL = [
    ("goforward.wav", 0),
    ("ldc93s1.wav", 1),
    ("new-home.wav", 0),
    ("librivox-0880.wav", 1),
    ("jfk.wav", 0),
    ("librivox-0930.wav", 1),
]
TURN_GAP_S = 1.5  # silence on both channels between turns: longer than endpointing, no overlap


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": ""}) as live:
        yield live


@pytest.fixture
def tenant(server):
    return make_tenant("multichannel")


@pytest.fixture(scope="module")
def two_talkers(eval_dir) -> tuple[np.ndarray, dict[int, str]]:
    """The stereo clip as (samples, 2) float32, and each channel's reference."""
    stereo = eval_dir / "stereo"
    entry = json.loads((stereo / "manifest.jsonl").read_text().splitlines()[0])
    with wave.open(str(stereo / entry["audio"])) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, 2).astype(np.float32) / 32768.0
    return samples, {c["channel"]: c["text"] for c in entry["channels"]}


def interleaved(stereo: np.ndarray) -> bytes:
    return to_s16(stereo.reshape(-1))


def turn_taking_call(eval_dir) -> tuple[np.ndarray, list[tuple[str, int, float, float]]]:
    """The CALL clips one after another, each on its channel with silence on the other, as (n, 2)
    audio, and where each clip is: (name, channel, start s, end s)."""
    parts, spans, at = [], [], 0.0
    for name, channel in CALL:
        audio = clip(eval_dir, name)
        stereo = np.zeros((len(audio), 2), dtype=np.float32)
        stereo[:, channel] = audio
        parts += [stereo, np.repeat(silence(TURN_GAP_S)[:, None], 2, axis=1)]
        spans.append((name, channel, at, at + len(audio) / RATE))
        at += len(audio) / RATE + TURN_GAP_S
    return np.concatenate(parts), spans


async def stream_session(
    server, raw_key: str, pcm: bytes, start: dict[str, Any], *, frame_bytes: int, pace_s: float = 0.0
) -> list[dict[str, Any]]:
    """One v1 session: start, the audio in frames, stop; every message the server sent until it closed."""
    headers = {"Authorization": f"Bearer {raw_key}"}
    async with websockets.connect(server.url, additional_headers=headers, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", **start}))
        messages = await receive_until(ws, "ready")

        async def read() -> None:
            with contextlib.suppress(websockets.ConnectionClosedError):  # an error's close code
                async for message in ws:  # until the server closes the socket
                    messages.append(json.loads(message))

        reader = asyncio.create_task(read())
        with contextlib.suppress(websockets.ConnectionClosed):  # the server may end it first (quota)
            for i in range(0, len(pcm), frame_bytes):
                await ws.send(pcm[i : i + frame_bytes])
                await asyncio.sleep(pace_s)
            await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 120)
    return messages


def of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def channel_text(finals: list[dict[str, Any]], channel: int) -> str:
    return " ".join(f["text"].strip() for f in finals if f["channel"] == channel and f["text"].strip())


def heard_in(text: str, reference: str) -> float:
    """The share of ``text``'s words that ``reference`` has: how likely it is a piece of that clip."""
    words, known = normalize_text(text).split(), set(normalize_text(reference).split())
    return sum(w in known for w in words) / len(words) if words else 0.0


def stored(session_id: str) -> list[Segment]:
    return list(Segment.objects.filter(session_id=session_id).order_by("index"))


def member(tenant: Tenant, username: str) -> Client:
    user = get_user_model().objects.create_user(username=username, password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant)
    client = Client()
    client.force_login(user)
    return client


async def test_each_channel_of_two_talkers_matches_its_own_reference(server, tenant, two_talkers):
    stereo, references = two_talkers
    start = {"sample_rate": RATE, "channels": 2, "multichannel": True}
    messages = await stream_session(server, tenant.raw_key, interleaved(stereo), start, frame_bytes=6400, pace_s=0.1)

    ready, finals = messages[0], of_type(messages, "final")
    assert ready["config"]["multichannel"] is True and ready["config"]["channels"] == 2
    assert {f["channel"] for f in finals} == {0, 1}
    assert all(m["channel"] in (0, 1) for m in of_type(messages, "partial")), "partials carry their channel too"
    wer = {c: word_error_rate([references[c]], [channel_text(finals, c)]) for c in (0, 1)}
    print(f"two-talkers WER per channel: {wer}")
    assert wer[0] <= 0.15 and wer[1] <= 0.15, (wer, finals)
    # One segment sequence for the session, numbered in the order finals were made.
    assert [f["segment"] for f in finals] == list(range(len(finals)))

    rows = await asyncio.to_thread(stored, ready["session_id"])
    assert [(s.index, s.channel, s.text) for s in rows] == [(f["segment"], f["channel"], f["text"]) for f in finals]


async def test_a_turn_taking_call_puts_every_utterance_on_its_own_channel(server, tenant, eval_dir, references):
    audio, spans = turn_taking_call(eval_dir)
    start = {"sample_rate": RATE, "channels": 2, "multichannel": True, "interim_results": False}
    messages = await stream_session(server, tenant.raw_key, interleaved(audio), start, frame_bytes=6400)

    finals = [f for f in of_type(messages, "final") if f["text"].strip()]
    assert finals
    print("\n".join(f"{f['channel']} {f['start']:6.2f}-{f['end']:6.2f} {f['text']}" for f in finals))
    for final in finals:
        # Its words are those of a clip spoken on its channel, more than of any on the other channel.
        own, other = (
            max(heard_in(final["text"], references[name]) for name, channel, _, _ in spans if (channel == c) is mine)
            for c, mine in ((final["channel"], True), (final["channel"], False))
        )
        assert own > other and own >= 0.6, (final, own, other)
    for name, channel, begin, end in spans:
        heard = " ".join(f["text"] for f in finals if f["channel"] == channel and begin - 0.5 <= f["start"] < end)
        assert word_error_rate([references[name]], [heard]) <= 0.35, (name, heard)
        other = [f for f in finals if f["channel"] != channel and f["start"] < end and f["end"] > begin]
        assert not other, f"{name} was heard on the other channel: {other}"
    assert [f["segment"] for f in finals] == sorted(f["segment"] for f in finals)


async def test_metering_counts_each_channel_of_a_multichannel_session_and_a_mixed_down_one_once(
    server, tenant, two_talkers
):
    stereo, _ = two_talkers
    duration_s = len(stereo) / RATE
    pcm = interleaved(stereo)
    per_channel = await stream_session(
        server, tenant.raw_key, pcm, {"channels": 2, "multichannel": True}, frame_bytes=6400
    )
    mixed = await stream_session(server, tenant.raw_key, pcm, {"channels": 2}, frame_bytes=6400)

    assert of_type(per_channel, "closed")[0]["audio_seconds"] == pytest.approx(2 * duration_s, abs=0.01)
    assert of_type(mixed, "closed")[0]["audio_seconds"] == pytest.approx(duration_s, abs=0.01)
    assert all("channel" not in f for f in of_type(mixed, "final")), "a mixed-down session has no channels"
    rows = {
        m["session_id"]: await asyncio.to_thread(Session.objects.get, pk=m["session_id"])
        for m in (per_channel[0], mixed[0])
    }
    multi, mono = rows[per_channel[0]["session_id"]], rows[mixed[0]["session_id"]]
    assert multi.audio_seconds == pytest.approx(2 * duration_s, abs=0.01) and multi.channels == 2
    assert mono.audio_seconds == pytest.approx(duration_s, abs=0.01) and mono.channels == 1
    assert multi.duration_s == pytest.approx(mono.duration_s, abs=0.01)
    used = await asyncio.to_thread(selectors.usage_seconds_this_month, tenant_id=tenant.tenant.pk)
    assert used == pytest.approx(3 * duration_s, abs=0.02)


async def test_the_quota_cuts_a_multichannel_session_at_its_metered_seconds(server, tenant, two_talkers):
    stereo, _ = two_talkers
    await asyncio.to_thread(Tenant.objects.filter(pk=tenant.tenant.pk).update, monthly_audio_seconds_quota=4)
    start = {"channels": 2, "multichannel": True}
    messages = await stream_session(server, tenant.raw_key, interleaved(stereo), start, frame_bytes=6400)

    assert messages[-1]["type"] == "error" and messages[-1]["code"] == "quota_exceeded"
    session = await asyncio.to_thread(Session.objects.get, pk=messages[0]["session_id"])
    assert session.audio_seconds == pytest.approx(4.0, abs=0.01)  # 2 s of stereo audio, both channels
    assert session.duration_s == pytest.approx(2.0, abs=0.01)


async def test_channels_beyond_the_bounds_are_refused_and_the_server_serves_the_next_session(server, tenant):
    headers = {"Authorization": f"Bearer {tenant.raw_key}"}
    for start in ({"channels": 3}, {"channels": 9, "multichannel": True}, {"channels": 2, "multichannel": "yes"}):
        async with websockets.connect(server.url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "start", **start}))
            error = (await receive_until(ws, "error"))[-1]
            assert error["code"] == "invalid_start" and "channel" in error["message"], error
    four = np.zeros((RATE, 4), dtype=np.float32)
    messages = await stream_session(
        server, tenant.raw_key, interleaved(four), {"channels": 4, "multichannel": True}, frame_bytes=3200
    )
    assert messages[-1]["type"] == "closed" and messages[-1]["audio_seconds"] == pytest.approx(4.0, abs=0.01)


async def test_transcript_page_downloads_and_api_show_channel_turns_in_time_order_to_their_tenant_only(
    server, tenant, two_talkers, eval_dir
):
    audio, spans = turn_taking_call(eval_dir)
    audio = audio[: round((spans[2][3] + TURN_GAP_S) * RATE)]  # three turns: agent, caller, agent
    start = {"channels": 2, "multichannel": True, "interim_results": False}
    messages = await stream_session(server, tenant.raw_key, interleaved(audio), start, frame_bytes=6400)
    session_id = messages[0]["session_id"]
    finals = [f for f in of_type(messages, "final") if f["text"].strip()]
    in_time = sorted(finals, key=lambda f: f["start"])
    assert [f["channel"] for f in in_time][:1] == [0] and {f["channel"] for f in in_time} == {0, 1}

    def check() -> None:
        other = make_tenant("multichannel-other")
        client, intruder = member(tenant.tenant, "agent-lead"), member(other.tenant, "eve")
        page = client.get(reverse("transcript_detail", args=[session_id])).content.decode()
        positions = [page.index(f["text"]) for f in in_time]
        assert positions == sorted(positions), "turns in time order"
        assert page.count("Channel 1") >= 2 and page.count("Channel 2") >= 1

        download = lambda fmt: client.get(reverse("transcript_download", args=[session_id, fmt]))  # noqa: E731
        txt = download("txt").content.decode().splitlines()
        labels = [line.split(":")[0] for line in txt]
        assert labels[:3] == ["Channel 1", "Channel 2", "Channel 1"], txt
        srt = download("srt").content.decode()
        cues = [block.splitlines()[2] for block in srt.strip().split("\n\n")]
        assert cues == [f"Channel {f['channel'] + 1}: {f['text'].strip()}" for f in in_time]
        data = json.loads(download("json").content)
        assert data["channels"] == 2 and data["duration_s"] == pytest.approx(data["audio_seconds"] / 2, abs=0.01)
        texts = [(s["channel"], s["text"]) for s in data["segments"] if s["text"].strip()]
        assert texts == [(f["channel"], f["text"]) for f in in_time]

        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
        body = api.get(reverse("api-session-detail", args=[session_id])).json()
        assert body["channels"] == 2
        assert {(s["index"], s["channel"]) for s in body["segments"]} >= {(f["segment"], f["channel"]) for f in finals}

        assert intruder.get(reverse("transcript_detail", args=[session_id])).status_code == 404
        for fmt in ("txt", "srt", "json"):
            assert intruder.get(reverse("transcript_download", args=[session_id, fmt])).status_code == 404
        stranger = APIClient()
        stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {other.raw_key}")
        assert stranger.get(reverse("api-session-detail", args=[session_id])).status_code == 404

    await asyncio.to_thread(check)
