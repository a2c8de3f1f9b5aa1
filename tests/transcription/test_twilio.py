"""Twilio Media Streams (``/ws/twilio``) through the real server and models: calls replayed as
Twilio sends them (μ-law of eval clips in 20 ms ``media`` messages of Twilio's JSON shape, each
track on its own timeline), stored per channel with the call's SID, finals POSTed signed, and
every bad stream closed with its reason and nothing kept."""

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import websockets
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import Membership, Tenant
from bench.evaluation import word_error_rate
from tests.support.audio import clip
from tests.support.codecs import encode_g711
from tests.support.receiver import CallbackReceiver
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription import webhooks
from transcription.models import Segment, Session

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = 160  # 20 ms of 8 kHz μ-law, as Twilio sends it
SILENCE = b"\xff" * CHUNK
CALLER = ["goforward.wav", "ldc93s1.wav"]  # inbound
AGENT = ["new-home.wav"]  # outbound, between the caller's turns
GAP_S = 1.5
REPLAY_WER = 0.15  # measured 0.067 (mu-law 8 kHz, tiny.en); see the README


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    env = {"REDIS_URL": "", "ASR_WEBHOOK_ALLOW_PRIVATE": "1", "ASR_START_TIMEOUT_S": "2"}
    with gateway_server(extra_env=env) as live:
        yield live


@pytest.fixture
def tenant(server):
    return make_tenant("twilio")


def twilio_url(server) -> str:
    return server.http_url.replace("http", "ws", 1) + "/ws/twilio"


def mulaw(eval_dir, name: str) -> bytes:
    return encode_g711(clip(eval_dir, name), "mulaw")


@dataclass
class Call:
    """A call as Twilio streams it: each track's μ-law laid at its offset in the call (ms)."""

    tracks: tuple[str, ...] = ("inbound",)
    parts: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    length_ms: int = 0

    def add(self, track: str, at_ms: int, audio: bytes) -> int:
        self.parts.setdefault(track, []).append((at_ms, audio))
        end = at_ms + len(audio) // 8
        self.length_ms = max(self.length_ms, end)
        return end

    def media(self, *, continuous: dict[str, bool]) -> list[dict[str, Any]]:
        """Every 20 ms chunk of each track as a media message, in the order Twilio might send them:
        by time, outbound before inbound. A track that is not ``continuous`` sends only its speech."""
        messages = []
        for track in self.tracks:
            audio = bytearray(b"\xff" * (self.length_ms * 8))
            spoken = np.zeros(len(audio) // CHUNK + 1, dtype=bool)
            for at_ms, part in self.parts.get(track, []):
                audio[at_ms * 8 : at_ms * 8 + len(part)] = part
                spoken[at_ms * 8 // CHUNK : (at_ms * 8 + len(part)) // CHUNK + 1] = True
            for chunk in range(len(audio) // CHUNK):
                if continuous[track] or spoken[chunk]:
                    payload = bytes(audio[chunk * CHUNK : (chunk + 1) * CHUNK])
                    messages.append(media_message(track, chunk, payload))
        return sorted(messages, key=lambda m: (int(m["media"]["timestamp"]), m["media"]["track"] == "inbound"))


def media_message(track: str, chunk: int, payload: bytes) -> dict[str, Any]:
    media = {"track": track, "chunk": str(chunk + 1), "timestamp": str(chunk * 20)}
    media["payload"] = base64.b64encode(payload).decode()
    return {"event": "media", "sequenceNumber": str(chunk + 2), "media": media, "streamSid": "MZ0123456789abcdef"}


def start_message(parameters: dict[str, str], tracks: tuple[str, ...] = ("inbound",), call_sid: str = "CA42") -> dict:
    start = {
        "accountSid": "AC0123456789abcdef",
        "streamSid": "MZ0123456789abcdef",
        "callSid": call_sid,
        "tracks": list(tracks),
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": parameters,
    }
    return {"event": "start", "sequenceNumber": "1", "start": start, "streamSid": start["streamSid"]}


CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
MARK = {"event": "mark", "sequenceNumber": "9999", "streamSid": "MZ0123456789abcdef", "mark": {"name": "greeting"}}
STOP = {"event": "stop", "sequenceNumber": "10000", "streamSid": "MZ0123456789abcdef",
        "stop": {"accountSid": "AC0123456789abcdef", "callSid": "CA42"}}  # fmt: skip


async def replay(server, messages: list[dict[str, Any] | str], *, pace_every: int = 50) -> tuple[int, str]:
    """Send the messages as Twilio would (pausing a moment every ``pace_every``), then wait for the
    server to close: its close code and reason. Twilio reads nothing the server sends."""
    async with websockets.connect(twilio_url(server), max_size=None) as ws:
        try:
            for i, message in enumerate(messages):
                await ws.send(message if isinstance(message, str) else json.dumps(message))
                if i % pace_every == pace_every - 1:
                    await asyncio.sleep(0.01)
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(ws.wait_closed(), 120)
        return ws.close_code or 0, ws.close_reason or ""


def call_sessions(tenant) -> list[Session]:
    return list(Session.objects.filter(tenant=tenant.tenant, protocol="twilio").order_by("started_at"))


def segments(session: Session) -> list[Segment]:
    return list(session.segments.order_by("index"))


def spoken(rows: list[Segment], channel: int | None) -> str:
    return " ".join(s.text.strip() for s in rows if s.channel == channel and s.text.strip())


async def test_a_replayed_call_is_stored_with_its_call_sid_and_matches_the_references(
    server, tenant, eval_dir, references
):
    call, at = Call(), 300
    for name in CALLER:
        at = call.add("inbound", at, mulaw(eval_dir, name)) + round(GAP_S * 1000)
    call.length_ms = at
    start = start_message({"api_key": tenant.raw_key, "FirstName": "Jane"}, call_sid="CA0f0f0f0f")
    code, reason = await replay(server, [CONNECTED, start, *call.media(continuous={"inbound": True}), MARK, STOP])

    assert (code, reason) == (1000, "")
    [session] = await asyncio.to_thread(call_sessions, tenant)
    rows = await asyncio.to_thread(segments, session)
    assert session.label == "Twilio call CA0f0f0f0f" and session.channels == 1 and session.close_reason == "stop"
    assert session.sample_rate == 8000 and session.audio_seconds == pytest.approx(call.length_ms / 1000, abs=0.05)
    wer = word_error_rate([" ".join(references[n] for n in CALLER)], [spoken(rows, None)])
    print(f"twilio replay WER (mu-law 8 kHz, one track): {wer:.3f}")
    assert wer <= REPLAY_WER, (wer, [s.text for s in rows])


async def test_both_tracks_land_on_their_channels_and_each_final_is_posted_signed(server, tenant, eval_dir, references):
    call, at = Call(tracks=("inbound", "outbound")), 300
    turns: list[tuple[str, str, float, float]] = []
    for track, name in (("inbound", CALLER[0]), ("outbound", AGENT[0]), ("inbound", CALLER[1])):
        end = call.add(track, at, mulaw(eval_dir, name))
        turns.append((track, name, at / 1000, end / 1000))
        at = end + round(GAP_S * 1000)
    call.length_ms = at
    # The outbound track sends only while the agent speaks: its gaps are filled by timestamp.
    media = call.media(continuous={"inbound": True, "outbound": False})
    with CallbackReceiver() as receiver:
        parameters = {"api_key": tenant.raw_key, "callback_url": receiver.url}
        start = start_message(parameters, tracks=("inbound", "outbound"), call_sid="CAboth")
        code, _ = await replay(server, [CONNECTED, start, *media, STOP])
        [session] = await asyncio.to_thread(call_sessions, tenant)
        rows = [s for s in await asyncio.to_thread(segments, session) if s.text.strip()]
        posted = receiver.wait_for(len(rows), timeout=30)

    assert code == 1000 and session.channels == 2 and session.label == "Twilio call CAboth"
    print("\n".join(f"{s.channel} {s.start:6.2f}-{s.end:6.2f} {s.text}" for s in rows))
    for track, name, begin_s, end_s in turns:
        channel = 0 if track == "inbound" else 1
        heard = [s for s in rows if s.start < end_s + 0.5 and s.end > begin_s - 0.5]
        assert heard and {s.channel for s in heard} == {channel}, (name, [(s.channel, s.text) for s in heard])
        assert word_error_rate([references[name]], [spoken(heard, channel)]) <= 0.35, (name, heard)

    secret = await asyncio.to_thread(account_services.webhook_secret_ensure, tenant_id=tenant.tenant.pk)
    bodies = []
    for request in posted:
        timestamp, body = int(request.headers["x-asr-timestamp"]), request.body
        assert request.headers["x-asr-signature"] == webhooks.signature(secret, timestamp, body)
        bodies.append(json.loads(body))
    assert {b["call_sid"] for b in bodies} == {"CAboth"} and {b["session_id"] for b in bodies} == {str(session.pk)}
    by_segment = {b["segment"]: b for b in bodies}
    for row in rows:
        posted_final = by_segment[row.index]
        assert (posted_final["text"], posted_final["channel"]) == (row.text, row.channel)
        assert posted_final["track"] == ("inbound", "outbound")[row.channel or 0]


def _page_of(tenant: Tenant, username: str) -> str:
    user = get_user_model().objects.create_user(username=username, password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant)
    client = Client()
    client.force_login(user)
    return client.get(reverse("transcript_list")).content.decode()


async def test_bad_streams_close_with_their_reason_store_nothing_and_the_next_call_is_served(server, tenant, eval_dir):
    speech = mulaw(eval_dir, CALLER[0])[: 8000 * 2]
    chunks = [media_message("inbound", i, speech[i * CHUNK : (i + 1) * CHUNK]) for i in range(len(speech) // CHUNK)]
    good = start_message({"api_key": tenant.raw_key})
    cases: list[tuple[str, list[dict[str, Any] | str], str]] = [
        ("missing credential", [CONNECTED, start_message({"FirstName": "Jane"}), *chunks[:5]], "unauthenticated"),
        ("bad key", [CONNECTED, start_message({"api_key": tenant.raw_key[:-4] + "xxxx"}), STOP], "unauthenticated"),
        ("oversized", [CONNECTED, json.dumps({**CONNECTED, "pad": "x" * 20000})], "message_too_large"),
        ("media before start", [CONNECTED, *chunks[:3], good], "bad_message"),
        (
            "mediaFormat",
            [CONNECTED, {**good, "start": {**good["start"], "mediaFormat": {"encoding": "audio/x-l16"}}}],
            "invalid_start",
        ),
        ("no start", [CONNECTED], "start_timeout"),
    ]
    for name, messages, expected in cases:
        code, reason = await replay(server, messages)
        assert code == 1008 if expected != "start_timeout" else code == 1011, (name, code, reason)
        assert reason.startswith(f"{expected}: "), (name, reason)
        assert tenant.raw_key not in reason
    assert await asyncio.to_thread(call_sessions, tenant) == [], "nothing started, nothing stored"

    garbage = {**chunks[3], "media": {**chunks[3]["media"], "payload": "not base64!"}}
    code, reason = await replay(server, [CONNECTED, good, *chunks[:3], garbage, *chunks[4:]])
    assert code == 1008 and reason.startswith("bad_audio: "), reason
    [refused] = await asyncio.to_thread(call_sessions, tenant)
    assert refused.close_reason == "bad_request" and await asyncio.to_thread(segments, refused) == []

    token, _ = await asyncio.to_thread(account_services.stream_token_mint, tenant=tenant.tenant)
    with_token = start_message({"token": token}, call_sid="CAtoken")
    code, reason = await replay(server, [CONNECTED, with_token, *chunks, STOP])
    assert (code, reason) == (1000, ""), "the next call is served, with a stream token"
    code, reason = await replay(server, [CONNECTED, with_token, STOP])
    assert reason.startswith("unauthenticated: "), "a stream token is good for one stream"
    labels = [s.label for s in await asyncio.to_thread(call_sessions, tenant)]
    assert labels == ["Twilio call CA42", "Twilio call CAtoken"]

    other = await asyncio.to_thread(make_tenant, "twilio-other")
    own_page = await asyncio.to_thread(_page_of, tenant.tenant, "twilio-owner")
    other_page = await asyncio.to_thread(_page_of, other.tenant, "twilio-intruder")
    assert "Twilio call CAtoken" in own_page and "CAtoken" not in other_page
