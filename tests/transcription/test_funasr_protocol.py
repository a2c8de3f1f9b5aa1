"""FunASR's WebSocket protocol (``/ws/funasr``), driven by a client written from FunASR's protocol
document (``runtime/docs/websocket_protocol.md``) as its Python client behaves, against the real server."""

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets

from accounts.models import Tenant
from bench.evaluation import word_error_rate
from tests.support.audio import clips_s16
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import Segment, Session

pytestmark = pytest.mark.django_db(transaction=True)

CLIPS = ["librivox-0870.wav", "ldc93s1.wav"]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": ""}) as live:
        yield live


@pytest.fixture
def tenant(server):
    return make_tenant("funasr-client")


@dataclass
class FunasrResult:
    """What FunASR's Python client shows: online text appended, each offline text replacing it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    online: str = ""
    offline: str = ""

    def take(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if message["mode"] in ("online", "2pass-online"):
            self.online += message["text"]
        else:
            self.online = ""
            self.offline += message["text"]


async def funasr_session(
    url: str, first: dict[str, Any], audio: bytes, *, chunk_ms: int = 60, speed: float = 1.0
) -> FunasrResult:
    """FunASR's client: the settings, PCM in chunk_interval pieces, ``is_speaking: false``, until ``is_final``."""
    result = FunasrResult()
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps(first))
        step = 16000 * 2 * chunk_ms // 1000
        for i in range(0, len(audio), step):
            await ws.send(audio[i : i + step])
            await asyncio.sleep(chunk_ms / 1000 / speed)  # as a microphone sends it
            while True:  # what has arrived so far, without waiting
                try:
                    result.take(json.loads(await asyncio.wait_for(ws.recv(), 0.001)))
                except TimeoutError:
                    break
        await ws.send(json.dumps({"is_speaking": False}))
        while not (result.messages and result.messages[-1]["is_final"]):
            result.take(json.loads(await asyncio.wait_for(ws.recv(), 60)))
    return result


def stored(tenant) -> tuple[Session, list[str]]:
    session = Session.objects.get(tenant=tenant)
    return session, [s.text for s in Segment.objects.filter(session=session).order_by("index")]


async def test_2pass_gives_online_deltas_and_offline_finals(server, tenant, eval_dir, references):
    url = server.http_url.replace("http", "ws", 1) + f"/ws/funasr?api_key={tenant.raw_key}"
    first = {"mode": "2pass", "wav_name": "h5", "is_speaking": True, "wav_format": "pcm", "chunk_size": [5, 10, 5],
             "chunk_interval": 10, "itn": True, "audio_fs": 16000, "hotwords": json.dumps({"Lincoln": 20})}  # fmt: skip
    result = await funasr_session(url, first, clips_s16(eval_dir, CLIPS, gap_s=1.5))

    modes = {m["mode"] for m in result.messages}
    assert modes == {"2pass-online", "2pass-offline"}
    assert all(m["wav_name"] == "h5" for m in result.messages)
    offline = [m for m in result.messages if m["mode"] == "2pass-offline"]
    assert word_error_rate([" ".join(references[c] for c in CLIPS)], [result.offline]) <= 0.2
    assert all(json.loads(m["timestamp"])[0][0] < json.loads(m["timestamp"])[0][1] for m in offline if m["text"])
    first_online = "".join(m["text"] for m in result.messages[: result.messages.index(offline[0])])
    assert first_online and offline[0]["text"].startswith(first_online.strip()[:10])  # the deltas lead to the final

    session, texts = await asyncio.to_thread(stored, tenant.tenant)
    assert session.protocol == "funasr" and session.close_reason == "stop"
    assert [t.strip() for t in texts] == [m["text"] for m in offline if m["text"]]


async def test_offline_mode_sends_only_finals_and_a_wav_file_says_its_format(server, tenant, eval_dir, references):
    url = server.http_url.replace("http", "ws", 1) + f"/ws/funasr?api_key={tenant.raw_key}"
    wav = (eval_dir / "real" / "jfk.wav").read_bytes()
    first = {"mode": "offline", "wav_name": "jfk", "is_speaking": True, "wav_format": "wav"}
    result = await funasr_session(url, first, wav, speed=4)
    assert {m["mode"] for m in result.messages} == {"offline"}
    assert result.messages[-1]["is_final"] and sum(m["is_final"] for m in result.messages) == 1
    assert word_error_rate([references["jfk.wav"]], [result.offline]) <= 0.15


async def test_refusals_and_bad_input_are_clear_and_the_server_keeps_serving(server, tenant, eval_dir):
    base = server.http_url.replace("http", "ws", 1) + "/ws/funasr"
    async with websockets.connect(base) as ws:  # FunASR's clients send no key unless told to
        reply = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedError):
            await ws.recv()
    assert reply["error"] == "unauthenticated" and "api_key" in reply["message"] and ws.close_code == 4001

    async with websockets.connect(f"{base}?api_key={tenant.raw_key}") as ws:
        await ws.send(json.dumps({"mode": "3pass", "wav_name": "x", "is_speaking": True}))
        reply = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedError):
            await ws.recv()
    assert reply["error"] == "invalid_start" and "mode" in reply["message"] and ws.close_code == 4400

    async with websockets.connect(f"{base}?api_key={tenant.raw_key}") as ws:
        await ws.send("{not json")
        reply = json.loads(await ws.recv())
    assert reply["error"] == "bad_message" and reply["is_final"]

    await asyncio.to_thread(Tenant.objects.filter(pk=tenant.tenant.pk).update, monthly_audio_seconds_quota=0)
    async with websockets.connect(f"{base}?api_key={tenant.raw_key}") as ws:
        await ws.send(json.dumps({"mode": "2pass", "wav_name": "quota", "is_speaking": True}))
        reply = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedError):
            await ws.recv()
    assert reply["error"] == "quota_exceeded" and reply["is_final"] and ws.close_code == 4029
    await asyncio.to_thread(Tenant.objects.filter(pk=tenant.tenant.pk).update, monthly_audio_seconds_quota=3600)

    first = {"mode": "offline", "wav_name": "again", "is_speaking": True, "wav_format": "PCM"}  # as its HTML client
    result = await funasr_session(
        f"{base}?api_key={tenant.raw_key}", first, clips_s16(eval_dir, ["ldc93s1.wav"], gap_s=1)
    )
    assert result.offline.strip()
