"""A session survives its server being killed: the client resumes on the restarted server."""

import asyncio
import json
import signal

import numpy as np
import pytest
from websockets.asyncio.client import connect

from bench.evaluation import word_error_rate
from tests.support.audio import clip, silence, to_s16
from tests.support.servers import gateway_server, running_in_thread
from tests.support.tenants import make_tenant
from tests.support.ws import receive_until
from transcription.models import Session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def test_resume_after_the_server_process_is_killed_and_restarted(eval_dir):
    key = (await asyncio.to_thread(make_tenant, "restart")).raw_key
    headers = {"Authorization": f"Bearer {key}"}
    first, second, gap = clip(eval_dir, "cards-001.wav"), clip(eval_dir, "goforward.wav"), silence(1.5)
    audio = np.concatenate([first, gap, second, gap])
    pcm = to_s16(audio)
    cut = (len(first) + len(gap) + len(second) // 2) * 2  # bytes: halfway through "go forward"

    async with running_in_thread(gateway_server()) as server:
        async with connect(server.url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "start", "interim_results": False}))
            ready = (await receive_until(ws, "ready"))[-1]
            for i in range(0, cut, 3200):
                await ws.send(pcm[i : min(i + 3200, cut)])
            before = await receive_until(ws, "final")
            server.process.send_signal(signal.SIGKILL)  # the server dies mid-utterance
            server.process.wait()

    async with running_in_thread(gateway_server(port=server.port)) as restarted:
        async with connect(restarted.url, additional_headers=headers) as ws:
            resume = {"session_id": ready["session_id"], "resume_token": ready["resume_token"], "last_segment": 0}
            await ws.send(json.dumps({"type": "start", "interim_results": False, "resume": resume}))
            resumed = (await receive_until(ws, "ready"))[-1]
            assert resumed["resumed"] is True and resumed["next_segment"] == 1
            # The client re-sends what it still holds from where the server asks.
            start_byte = int(round(resumed["resume_from_s"] * 16000)) * 2
            assert 0 < start_byte <= (len(first) + len(gap)) * 2
            for i in range(start_byte, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
            await ws.send(json.dumps({"type": "stop"}))
            after = await receive_until(ws, "closed", timeout=60)

    finals = [m for m in before + after if m["type"] == "final"]
    assert [f["segment"] for f in finals] == [0, 1]
    assert word_error_rate(["ten of clubs", "go forward ten meters"], [f["text"] for f in finals]) == 0.0
    session = await Session.objects.aget(pk=ready["session_id"])
    assert session.status == "closed" and session.close_reason == "stop"
    assert await session.segments.acount() == 2
