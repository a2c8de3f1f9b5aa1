"""The same audio through protocol v1, Deepgram's live API and FunASR's protocol gives the same finals.

Each protocol is a thin adapter over GatewaySession: finals come from the VAD's endpoints and the
same decodes whatever the client spoke, so a difference is an adapter setting something its own way.
The audio is sent faster than real time: finals depend on the audio alone, not on its pace.
"""

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from accounts.models import Tenant
from bench.evaluation import load_manifest, word_error_rate
from tests.support.audio import clips_s16
from tests.support.servers import gateway_server
from tests.support.tenants import TenantWithKey, make_tenant
from tests.transcription.test_deepgram_live import client_for, collect, finals, stream
from tests.transcription.test_funasr_protocol import funasr_session
from transcription import services
from transcription.engine_settings import session_limits

pytestmark = pytest.mark.django_db(transaction=True)

CLIPS = ["cards-005.wav", "goforward.wav", "jfk.wav", "ldc93s1.wav"]  # 26 s with the pauses
GAP_S = 1.5  # longer than the endpointing: each pause ends an utterance
CHUNK = 3200  # 100 ms of 16 kHz pcm_s16le
PACE_S = 0.01  # ten times real time, inside the server's head start (ASR_AUDIO_BURST_S)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": ""}) as live:
        yield live


@pytest.fixture(scope="module")
def audio(eval_dir) -> bytes:
    return clips_s16(eval_dir, CLIPS, gap_s=GAP_S)


@pytest.fixture(scope="module")
def reference(eval_dir) -> str:
    texts = {entry.audio_path.name: entry.text for entry in load_manifest(eval_dir / "real")}
    return " ".join(texts[name] for name in CLIPS)


def ws_url(server: Any, path: str) -> str:
    return server.http_url.replace("http", "ws", 1) + path


async def v1_finals(server: Any, raw_key: str, pcm: bytes, endpointing_ms: int) -> list[str]:
    """Protocol v1 as README describes it: ``start``, binary frames, ``stop``, messages until ``closed``."""
    messages: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {raw_key}"}
    async with websockets.connect(ws_url(server, "/ws/v1/transcribe"), additional_headers=headers) as ws:
        start = {"type": "start", "sample_rate": 16000, "interim_results": True, "endpointing_ms": endpointing_ms}
        await ws.send(json.dumps(start))

        async def read() -> None:
            async for text in ws:
                messages.append(json.loads(text))

        reader = asyncio.create_task(read())
        for i in range(0, len(pcm), CHUNK):
            await ws.send(pcm[i : i + CHUNK])
            await asyncio.sleep(PACE_S)
        await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 120)
    assert messages[0]["type"] == "ready" and messages[-1]["type"] == "closed", messages[-1]
    return [m["text"].strip() for m in messages if m["type"] == "final" and m["text"].strip()]


async def deepgram_finals(server: Any, raw_key: str, pcm: bytes, endpointing_ms: int) -> list[str]:
    """Deepgram's official SDK, as in test_deepgram_live."""
    messages: list[Any] = []
    options = dict(model="nova-3", encoding="linear16", sample_rate=16000, interim_results="true",
                   endpointing=endpointing_ms, punctuate="true", smart_format="true")  # fmt: skip
    async with client_for(server, raw_key).listen.v1.connect(**options) as socket:
        reader = asyncio.create_task(collect(socket, messages))
        await stream(socket, pcm, pause=PACE_S)
        await socket.send_close_stream()
        await asyncio.wait_for(reader, 120)
    texts = [r.channel.alternatives[0].transcript for r in finals(messages)]
    return [t for t in texts if t]


async def funasr_finals(server: Any, raw_key: str, pcm: bytes) -> list[str]:
    """FunASR's client, as in test_funasr_protocol: 2pass, its finals the ``2pass-offline`` texts."""
    first = {"mode": "2pass", "wav_name": "parity", "is_speaking": True, "wav_format": "pcm", "audio_fs": 16000,
             "chunk_size": [5, 10, 5], "chunk_interval": 10, "itn": True}  # fmt: skip
    speed = 0.06 / PACE_S  # 60 ms chunks at the same pace as the others
    result = await funasr_session(ws_url(server, f"/ws/funasr?api_key={raw_key}"), first, pcm, speed=speed)
    assert result.messages[-1]["is_final"]
    return [m["text"] for m in result.messages if m["mode"] == "2pass-offline" and m["text"]]


def own_session(tenant: Tenant) -> str:
    """A stored session of the other tenant, so its listing is not empty by default."""
    session = services.session_start(tenant_id=tenant.pk, api_key_id=None, language="en", engine="x", sample_rate=16000)
    return str(session.id)


def auth(tenant: TenantWithKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.raw_key}"}


async def sessions_seen(http: httpx.AsyncClient, tenant: TenantWithKey) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/sessions", headers=auth(tenant), params={"page_size": 200})
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_v1_deepgram_and_funasr_give_the_same_finals_and_rows_no_other_tenant_sees(server, audio, reference):
    tenant_a = await asyncio.to_thread(make_tenant, "parity-a")
    tenant_b = await asyncio.to_thread(make_tenant, "parity-b")
    endpointing_ms = session_limits().default_endpointing_ms  # FunASR's clients cannot choose one
    texts = {
        "v1": await v1_finals(server, tenant_a.raw_key, audio, endpointing_ms),
        "deepgram": await deepgram_finals(server, tenant_a.raw_key, audio, endpointing_ms),
        "funasr": await funasr_finals(server, tenant_a.raw_key, audio),
    }
    assert len(texts["v1"]) >= len(CLIPS), texts["v1"]
    assert word_error_rate([reference], [" ".join(texts["v1"])]) <= 0.2
    assert texts["deepgram"] == texts["v1"], texts
    assert texts["funasr"] == texts["v1"], texts

    b_session = await asyncio.to_thread(own_session, tenant_b.tenant)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        a_rows = await sessions_seen(http, tenant_a)
        assert sorted(row["protocol"] for row in a_rows) == ["deepgram", "funasr", "v1"]
        for row in a_rows:
            detail = (await http.get(f"/api/v1/sessions/{row['id']}", headers=auth(tenant_a))).json()
            stored = [s["text"].strip() for s in detail["segments"] if s["text"].strip()]
            assert (detail["status"], detail["close_reason"]) == ("closed", "stop"), row["protocol"]
            assert len(detail["segments"]) == len(texts["v1"]) and stored == texts[row["protocol"]], row["protocol"]
            assert (await http.get(f"/api/v1/sessions/{row['id']}", headers=auth(tenant_b))).status_code == 404
        b_rows = await sessions_seen(http, tenant_b)
        assert [row["id"] for row in b_rows] == [b_session], "tenant B sees only its own session"
