"""Opus (Ogg, WebM), μ-law and A-law streams through the real server: the finals match the same
audio sent as PCM, metering counts decoded seconds, and corrupt streams end with a clear error
while the server keeps serving. All audio is real eval speech, encoded in the test by PyAV."""

import asyncio
import base64
import json
from typing import Any

import numpy as np
import pytest
import soxr
import websockets

from bench.evaluation import ConcatenatedSession, word_error_rate
from tests.support.audio import clip, to_s16
from tests.support.codecs import (
    encode_g711,
    encode_opus,
    encode_vorbis_ogg,
    g711_wav,
    ogg_opus_of_packets,
    ogg_page_starts,
    webm_as_recorded,
    webm_element_starts,
)
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from tests.transcription import test_openai_realtime as realtime
from tests.transcription.streaming import eval_session
from tests.transcription.test_deepgram_live import client_for, collect, finals, transcript
from transcription.models import Segment, Session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("models_loaded")]

PIECE_S = 0.1  # what a client sends at a time
PACE_S = 0.01  # ten times real time (the server lets this test's clients run at up to 20)
CLOSE_BAD = 4400


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": "", "ASR_MAX_AUDIO_SPEED": "20"}) as live:
        yield live


@pytest.fixture
def tenant(server):
    return make_tenant("audio-encodings")


@pytest.fixture(scope="module")
def session(eval_dir) -> ConcatenatedSession:
    return eval_session(eval_dir, gap_s=1.5)  # every real/ clip: 137 words, 78 s


@pytest.fixture(scope="module")
def reference(session) -> str:
    return " ".join(c.reference for c in session.clips)


def pieces_of(data: bytes, duration_s: float, piece_s: float = PIECE_S) -> list[bytes]:
    """The stream in pieces of about ``piece_s`` of audio each, whatever its bitrate."""
    size = max(1, round(len(data) * piece_s / duration_s))
    return [data[i : i + size] for i in range(0, len(data), size)]


async def v1(server: Any, key: str, start: dict[str, Any] | None, pieces: list[bytes]) -> tuple[list[dict], int]:
    """Protocol v1 as README describes it: ``start`` (if any), binary frames, ``stop``; the messages and close code."""
    messages: list[dict[str, Any]] = []
    url = server.http_url.replace("http", "ws", 1) + "/ws/v1/transcribe"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:

        async def read() -> None:
            try:
                async for text in ws:
                    messages.append(json.loads(text))
            except websockets.ConnectionClosed:
                pass  # closed with an error code: the error message came before

        reader = asyncio.create_task(read())
        try:
            if start is not None:
                await ws.send(json.dumps({"type": "start", **start}))
            for piece in pieces:
                await ws.send(piece)
                await asyncio.sleep(PACE_S)
            await ws.send(json.dumps({"type": "stop"}))
        except websockets.ConnectionClosed:
            pass  # the server ended the session: its error is among the messages
        await asyncio.wait_for(reader, 180)
    assert ws.close_code is not None
    return messages, ws.close_code


def text_of(messages: list[dict[str, Any]]) -> str:
    return " ".join(m["text"].strip() for m in messages if m["type"] == "final" and m["text"].strip())


def _pcm_wer(server: Any, django_db_blocker: Any, audio: np.ndarray, rate: int, reference: str) -> float:
    """The finals' WER of ``audio`` streamed as pcm_s16le at ``rate``: what an encoding is measured against."""
    with django_db_blocker.unblock():
        key = make_tenant(f"audio-encodings-pcm-{rate}").raw_key
    start, pieces = {"sample_rate": rate}, pieces_of(to_s16(audio), len(audio) / rate)
    messages, code = asyncio.run(v1(server, key, start, pieces))
    assert code == 1000 and messages[-1]["type"] == "closed"
    return word_error_rate([reference], [text_of(messages)])


@pytest.fixture(scope="module")
def pcm_wer(server, session, reference, django_db_blocker) -> float:
    return _pcm_wer(server, django_db_blocker, session.audio, 16000, reference)


@pytest.fixture(scope="module")
def pcm_8k_wer(server, session, reference, django_db_blocker) -> float:
    """The same audio in the telephone band, as PCM: what G.711's own coding is measured against."""
    return _pcm_wer(server, django_db_blocker, soxr.resample(session.audio, 16000, 8000, "HQ"), 8000, reference)


@pytest.mark.parametrize("container", ["ogg", "webm"])
async def test_opus_finals_are_within_a_point_of_pcm_and_metering_counts_decoded_seconds(
    server, tenant, session, reference, pcm_wer, container
):
    data = encode_opus(session.audio, container)
    if container == "webm":
        data = webm_as_recorded(data)  # as MediaRecorder streams it
    start = {"encoding": "opus", "sample_rate": 48000 if container == "webm" else 16000}
    messages, code = await v1(server, tenant.raw_key, start, pieces_of(data, session.duration_s))

    assert code == 1000, messages[-1]
    ready = messages[0]
    assert ready["type"] == "ready" and ready["config"]["encoding"] == "opus"
    wer = word_error_rate([reference], [text_of(messages)])
    per_minute = len(data) * 60 / session.duration_s
    print(f"\nWER pcm_s16le 16 kHz {pcm_wer:.4f}, opus/{container} 32 kbps {wer:.4f}; {per_minute:.0f} bytes/min")
    assert wer <= pcm_wer + 0.01
    # Metered: the audio's duration (to a 20 ms Opus frame), not the ~10x smaller byte count.
    closed = messages[-1]
    assert closed["audio_seconds"] == pytest.approx(session.duration_s, abs=0.025)
    row = await asyncio.to_thread(Session.objects.get, tenant=tenant.tenant)
    assert row.audio_seconds == pytest.approx(session.duration_s, abs=0.025)


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
async def test_g711_at_8_khz_costs_only_what_the_telephone_band_does(
    server, tenant, session, reference, pcm_wer, pcm_8k_wer, law
):
    data = encode_g711(session.audio, law)
    messages, code = await v1(server, tenant.raw_key, {"encoding": law}, pieces_of(data, session.duration_s))

    assert code == 1000, messages[-1]
    assert messages[0]["config"]["sample_rate"] == 8000  # G.711's default rate
    wer = word_error_rate([reference], [text_of(messages)])
    print(f"\nWER pcm_s16le 16 kHz {pcm_wer:.4f}, pcm_s16le 8 kHz {pcm_8k_wer:.4f}, {law} 8 kHz {wer:.4f}")
    assert wer <= pcm_8k_wer + 0.03  # G.711's coding, within 3 points of PCM in the same band
    # The band itself: 8 kHz audio cost tiny.en 3.6 points on these clips (2026-12-01), μ-law no more.
    assert wer <= pcm_wer + 0.05
    assert messages[-1]["audio_seconds"] == pytest.approx(session.duration_s, abs=0.001)


async def test_a_v1_stream_that_starts_as_ogg_without_start_is_opus(server, tenant, eval_dir, references):
    speech = np.concatenate([clip(eval_dir, "jfk.wav"), np.zeros(24000, np.float32)])
    data = encode_opus(speech, "ogg")
    messages, code = await v1(server, tenant.raw_key, None, pieces_of(data, len(speech) / 16000))
    assert code == 1000 and messages[0]["config"]["encoding"] == "opus"
    assert messages[0]["config"]["sample_rate"] == 48000
    assert word_error_rate([references["jfk.wav"]], [text_of(messages)]) <= 0.2


async def test_a_g711_wav_file_says_its_format_without_start(server, tenant, eval_dir, references):
    speech = np.concatenate([clip(eval_dir, "jfk.wav"), np.zeros(24000, np.float32)])
    data = g711_wav(speech, "alaw")
    messages, code = await v1(server, tenant.raw_key, None, pieces_of(data, len(speech) / 16000))
    assert code == 1000 and (messages[0]["config"]["encoding"], messages[0]["config"]["sample_rate"]) == ("alaw", 8000)
    assert word_error_rate([references["jfk.wav"]], [text_of(messages)]) <= 0.2


async def test_deepgram_sdk_streams_webm_opus_without_encoding_as_a_browser_does(
    server, tenant, session, reference, pcm_wer
):
    data = webm_as_recorded(encode_opus(session.audio, "webm"))
    messages: list[Any] = []
    async with client_for(server, tenant.raw_key).listen.v1.connect(model="nova-3", language="en") as socket:
        reader = asyncio.create_task(collect(socket, messages))
        for piece in pieces_of(data, session.duration_s):
            await socket.send_media(piece)
            await asyncio.sleep(PACE_S)
        await socket.send_close_stream()
        await asyncio.wait_for(reader, 180)
    wer = word_error_rate([reference], [transcript(finals(messages))])
    print(f"\nWER pcm_s16le {pcm_wer:.4f}, Deepgram webm/opus {wer:.4f}")
    assert wer <= pcm_wer + 0.01
    assert messages[-1].duration == pytest.approx(session.duration_s, abs=0.025)


def _truncated_page_then_garbage(speech: np.ndarray) -> bytes:
    data = encode_opus(speech, "ogg")
    return data[: ogg_page_starts(data)[-2] + 100] + b"\x00garbage" * 9000


def _garbage_after_the_headers(speech: np.ndarray) -> bytes:
    data = encode_opus(speech, "ogg")
    return data[: ogg_page_starts(data)[2]] + b"\xff" * 3000


def _webm_then_ogg(speech: np.ndarray) -> bytes:
    webm = webm_as_recorded(encode_opus(speech, "webm"))
    return webm[: webm_element_starts(webm)[40]] + encode_opus(speech, "ogg")


def _too_much_per_message(speech: np.ndarray) -> bytes:
    return ogg_opus_of_packets([b"\x83\x30"] * 400)  # 48 s of audio in 1.7 KB: one message


CORRUPT = {
    "truncated-page-then-garbage": (_truncated_page_then_garbage, "corrupt (its CRC does not match)"),
    "garbage-after-the-headers": (_garbage_after_the_headers, "Expected an Ogg page"),
    "webm-switches-to-ogg": (_webm_then_ogg, "switched from WebM to Ogg"),
    "vorbis-in-ogg": (encode_vorbis_ogg, "carries Vorbis, not Opus"),
    "too-much-audio-per-message": (_too_much_per_message, "decoded to more than 30 s"),
}


@pytest.mark.parametrize("case", CORRUPT)
async def test_corrupt_opus_ends_the_session_with_bad_audio_and_the_next_session_works(
    server, tenant, eval_dir, references, case
):
    make, reason = CORRUPT[case]
    speech = np.concatenate([clip(eval_dir, "goforward.wav"), np.zeros(24000, np.float32)])
    data = make(speech)
    pieces = [data] if case == "too-much-audio-per-message" else pieces_of(data, 10.0, 1.0)
    messages, code = await v1(server, tenant.raw_key, {"encoding": "opus"}, pieces)

    error = next(m for m in messages if m["type"] == "error")
    assert error["code"] == "bad_audio" and reason in error["message"], error
    assert code == CLOSE_BAD
    row = await asyncio.to_thread(lambda: Session.objects.filter(tenant=tenant.tenant).latest("started_at"))
    assert row.status == "closed" and row.close_reason == "bad_request"
    if case == "truncated-page-then-garbage":  # what was heard before the garbage is kept
        segments = await asyncio.to_thread(lambda: list(Segment.objects.filter(session=row)))
        assert segments and word_error_rate([references["goforward.wav"]], [segments[0].text]) <= 0.25

    good = encode_opus(speech, "webm")
    messages, code = await v1(server, tenant.raw_key, {"encoding": "opus"}, pieces_of(good, len(speech) / 16000))
    assert code == 1000 and word_error_rate([references["goforward.wav"]], [text_of(messages)]) <= 0.25


@pytest.mark.parametrize(
    ("start", "outcome"),
    [
        ({"encoding": "mulaw", "sample_rate": 11025}, "closed"),
        ({"encoding": "alaw", "sample_rate": 7000}, "invalid_start"),
        ({"encoding": "opus", "sample_rate": 44100}, "invalid_start"),
        ({"encoding": "gsm"}, "invalid_start"),
    ],
)
async def test_g711_takes_any_rate_in_range_and_opus_its_own(server, tenant, eval_dir, references, start, outcome):
    speech = np.concatenate([clip(eval_dir, "goforward.wav"), np.zeros(24000, np.float32)])
    data = encode_g711(speech, "mulaw", rate=11025)
    messages, code = await v1(server, tenant.raw_key, start, pieces_of(data, len(speech) / 16000))
    if outcome == "closed":
        assert code == 1000 and messages[0]["config"]["sample_rate"] == 11025
        assert word_error_rate([references["goforward.wav"]], [text_of(messages)]) <= 0.25
    else:
        assert messages[0]["type"] == "error" and messages[0]["code"] == outcome and code == CLOSE_BAD


async def test_pcm_declared_but_opus_sent_is_refused_with_the_fix(server, tenant, eval_dir):
    data = encode_opus(clip(eval_dir, "goforward.wav"), "webm")
    messages, code = await v1(server, tenant.raw_key, {"sample_rate": 16000}, [data])
    error = messages[-1]
    assert error["code"] == "bad_audio" and "'encoding': 'opus'" in error["message"] and code == CLOSE_BAD


async def test_openai_realtime_takes_g711_by_its_ga_and_beta_names(server, tenant, eval_dir, references):
    names = ["jfk.wav", "ldc93s1.wav"]
    speech = np.concatenate([part for n in names for part in (clip(eval_dir, n), np.zeros(24000, np.float32))])
    mulaw = encode_g711(speech, "mulaw")
    events: list[Any] = []
    connect = realtime.client_for(server, tenant.raw_key).realtime.connect
    async with connect(extra_query={"intent": "transcription"}) as conn:
        audio_input = {"format": {"type": "audio/pcmu"}, "turn_detection": None}  # the client commits
        await conn.session.update(session={"type": "transcription", "audio": {"input": audio_input}})
        for piece in pieces_of(mulaw, len(speech) / 16000):
            await conn.input_audio_buffer.append(audio=base64.b64encode(piece).decode())
            await asyncio.sleep(PACE_S)
        await conn.input_audio_buffer.commit()
        await realtime.events_until(conn, events, lambda got: len(realtime.completed(got)) == 1)
    assert events[1].type == "session.updated" and events[1].session.audio.input.format.type == "audio/pcmu"
    heard = " ".join(f.transcript for f in realtime.completed(events))
    assert word_error_rate([" ".join(references[n] for n in names)], [heard]) <= 0.2
    row = await asyncio.to_thread(Session.objects.get, tenant=tenant.tenant)
    assert row.sample_rate == 8000

    url = server.http_url.replace("http", "ws", 1) + "/v1/realtime?intent=transcription"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {tenant.raw_key}"}) as ws:
        await ws.recv()  # session.created
        update = {"input_audio_format": "g711_alaw", "turn_detection": None}
        await ws.send(json.dumps({"type": "transcription_session.update", "session": update}))
        updated = json.loads(await ws.recv())
        assert updated["type"] == "transcription_session.updated"
        assert updated["session"]["input_audio_format"] == "g711_alaw"
        for piece in pieces_of(encode_g711(speech[: 11 * 16000], "alaw"), 11.0):
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(piece).decode()}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        done = [m async for m in _until(ws, realtime.COMPLETED)]
    assert word_error_rate([references["jfk.wav"]], [done[-1]["transcript"]]) <= 0.2


async def _until(ws: Any, kind: str):
    async with asyncio.timeout(60):
        while True:
            message = json.loads(await ws.recv())
            yield message
            if message["type"] == kind:
                return
