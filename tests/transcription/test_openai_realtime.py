"""OpenAI Realtime transcription (``/v1/realtime?intent=transcription``), driven by the official
`openai` SDK, unmodified, against the real server."""

import asyncio
import base64
import json
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
import soxr
import websockets
from openai import AsyncOpenAI

from accounts.models import Tenant
from bench.evaluation import word_error_rate
from tests.support.audio import clips, to_s16
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import Segment, Session

pytestmark = pytest.mark.django_db(transaction=True)

CLIPS = ["librivox-0870.wav", "ldc93s1.wav"]
APPEND_MS = 100
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"
SILENCE_APPEND = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 4800).decode()})


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": ""}) as live:
        yield live


@pytest.fixture
def tenant(server):
    return make_tenant("openai-realtime")


def client_for(server, key: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{server.http_url}/v1", api_key=key, max_retries=0)


def pcm24(samples: np.ndarray) -> bytes:
    """Realtime's audio/pcm: 16-bit mono at 24 kHz."""
    return to_s16(soxr.resample(samples, 16000, 24000))


async def send_audio(connection: Any, pcm: bytes, *, speed: float = 1.0) -> None:
    step = 24000 * 2 * APPEND_MS // 1000
    for i in range(0, len(pcm), step):
        await connection.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + step]).decode())
        await asyncio.sleep(APPEND_MS / 1000 / speed)


async def events_until(connection: Any, into: list[Any], done: Any, timeout: float = 60) -> None:
    async def read() -> None:
        async for event in connection:
            into.append(event)
            if done(into):
                return

    await asyncio.wait_for(read(), timeout)


def completed(events: list[Any]) -> list[Any]:
    return [e for e in events if e.type == COMPLETED]


def deltas_by_item(events: list[Any]) -> dict[str, str]:
    joined: dict[str, str] = defaultdict(str)
    for event in events:
        if event.type == DELTA:
            joined[event.item_id] += event.delta
    return joined


def stored(tenant: Tenant) -> tuple[Session, list[str]]:
    session = Session.objects.get(tenant=tenant)
    return session, [s.text.strip() for s in Segment.objects.filter(session=session).order_by("index")]


async def test_server_vad_items_with_deltas_that_add_up_to_the_stored_final(server, tenant, eval_dir, references):
    pcm = pcm24(clips(eval_dir, CLIPS, gap_s=1.5))
    events: list[Any] = []
    async with client_for(server, tenant.raw_key).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        transcription = {"model": "gpt-4o-transcribe", "language": "en"}
        turn = {"type": "server_vad", "silence_duration_ms": 500}
        audio_input = {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": transcription,
            "turn_detection": turn,
        }
        await conn.session.update(session={"type": "transcription", "audio": {"input": audio_input}})
        await send_audio(conn, pcm)
        await events_until(conn, events, lambda got: len(completed(got)) >= len(CLIPS))

    kinds = [e.type for e in events]
    assert kinds[:2] == ["session.created", "session.updated"]
    assert events[1].session.audio.input.turn_detection.silence_duration_ms == 500
    finals = completed(events)
    assert word_error_rate([" ".join(references[c] for c in CLIPS)], [" ".join(f.transcript for f in finals)]) <= 0.2
    joined = deltas_by_item(events)
    assert any(e.type == DELTA for e in events[: kinds.index(COMPLETED)]), "no delta before the first completed"
    for final in finals:
        assert joined[final.item_id] == final.transcript  # append-only deltas add up to the transcript
        assert final.usage.type == "duration" and final.usage.seconds > 0
        item_events = [e.type for e in events if getattr(e, "item_id", None) == final.item_id]
        assert (
            item_events.index("input_audio_buffer.speech_started")
            < item_events.index("input_audio_buffer.speech_stopped")
            < item_events.index("input_audio_buffer.committed")
            < item_events.index(COMPLETED)
        )
    for _ in range(50):  # the session row closes once the server saw the socket go
        session, texts = await asyncio.to_thread(stored, tenant.tenant)
        if session.status == "closed":
            break
        await asyncio.sleep(0.1)
    assert session.protocol == "openai-realtime" and session.sample_rate == 24000
    assert texts == [f.transcript for f in finals]


async def test_manual_commits_make_one_item_each(server, tenant, eval_dir, references):
    events: list[Any] = []
    async with client_for(server, tenant.raw_key).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
        await conn.input_audio_buffer.commit()  # nothing to commit yet: an error, and the session goes on
        for name in CLIPS:
            await send_audio(conn, pcm24(clips(eval_dir, [name], gap_s=0.5)), speed=3)
            await conn.input_audio_buffer.commit()
            await events_until(conn, events, lambda got, n=len(completed(events)): len(completed(got)) > n)
    errors = [e for e in events if e.type == "error"]
    assert len(errors) == 1 and errors[0].error.code == "input_audio_buffer_commit_empty"
    assert not any(e.type.startswith("input_audio_buffer.speech") for e in events)  # no server VAD
    committed = [e for e in events if e.type == "input_audio_buffer.committed"]
    finals = completed(events)
    assert [c.item_id for c in committed] == [f.item_id for f in finals] and committed[1].previous_item_id == finals[
        0
    ].item_id
    for name, final in zip(CLIPS, finals, strict=True):
        assert word_error_rate([references[name]], [final.transcript]) <= 0.25


async def test_a_browser_uses_a_single_use_client_secret(server, tenant, eval_dir):
    secret = await client_for(server, tenant.raw_key).realtime.client_secrets.create(session={"type": "transcription"})
    assert secret.value and secret.expires_at > 0 and secret.session.type == "transcription"
    url = server.http_url.replace("http", "ws", 1) + "/v1/realtime?intent=transcription"
    protocols = ["realtime", f"openai-insecure-api-key.{secret.value}"]
    async with websockets.connect(url, subprotocols=protocols) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(await ws.recv())["type"] == "session.created"
    with pytest.raises(websockets.InvalidStatus) as reused:
        async with websockets.connect(url, subprotocols=protocols):
            pass
    assert reused.value.response.status_code == 401


async def test_refusals_and_bad_events(server, tenant, eval_dir):
    url = server.http_url.replace("http", "ws", 1) + "/v1/realtime"
    with pytest.raises(websockets.InvalidStatus) as bad_key:
        async with websockets.connect(
            f"{url}?intent=transcription", additional_headers={"Authorization": "Bearer asr_x_y"}
        ):
            pass
    assert bad_key.value.response.status_code == 401
    headers = {"Authorization": f"Bearer {tenant.raw_key}"}
    with pytest.raises(websockets.InvalidStatus) as conversation:
        async with websockets.connect(f"{url}?model=gpt-realtime", additional_headers=headers):
            pass
    assert conversation.value.response.status_code == 400

    async with websockets.connect(f"{url}?intent=transcription", additional_headers=headers) as ws:
        await ws.recv()  # session.created
        bad = [
            {
                "type": "session.update",
                "session": {"type": "transcription", "audio": {"input": {"format": {"type": "audio/g729"}}}},
            },
            {"type": "input_audio_buffer.append", "audio": "***not base64***"},
            {"type": "response.create"},
            # What a careless client sends: wrong JSON types where objects and strings belong.
            {"type": "session.update", "session": {"audio": "pcm"}},
            {"type": "session.update", "session": {"audio": {"input": {"format": ["audio/pcm"]}}}},
            {"type": "session.update", "session": {"audio": {"input": {"format": {"type": ["audio/pcm"]}}}}},
            {"type": "session.update", "session": {"audio": {"input": {"transcription": {"language": 5}}}}},
            {
                "type": "session.update",
                "session": {"audio": {"input": {"turn_detection": {"silence_duration_ms": "x"}}}},
            },
            {"type": "transcription_session.update", "session": {"input_audio_transcription": "whisper-1"}},
        ]
        for event in bad:
            await ws.send(json.dumps(event))
        codes = [json.loads(await ws.recv())["error"]["code"] for _ in bad]
        assert codes == ["invalid_value", "invalid_value", "unsupported_event"] + ["invalid_value"] * 6
        await ws.send(json.dumps({"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}))
        updated = json.loads(await ws.recv())  # a refused update left nothing behind: this one applies
        assert updated["type"] == "session.updated" and updated["session"]["audio"]["input"]["turn_detection"] is None
        await ws.send(SILENCE_APPEND)
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        assert json.loads(await ws.recv())["type"] == "input_audio_buffer.committed"  # it goes on

    await asyncio.to_thread(Tenant.objects.filter(pk=tenant.tenant.pk).update, monthly_audio_seconds_quota=0)
    async with websockets.connect(f"{url}?intent=transcription", additional_headers=headers) as ws:
        await ws.recv()
        await ws.send(SILENCE_APPEND)
        error = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedError):
            await ws.recv()
    assert error["error"]["type"] == "insufficient_quota" and ws.close_code == 1008
