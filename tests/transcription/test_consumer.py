"""Protocol v1 end to end through the real ASGI application, real models and PostgreSQL."""

import asyncio
import uuid

import numpy as np
import pytest

from accounts import services as account_services
from bench.evaluation import word_error_rate
from tests.support.audio import clip, clips_s16, to_s16
from tests.support.ws import Transcript, communicator, read_until_closed, send_audio, send_json
from transcription.models import Segment, Session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("models_loaded")]
SILENCE_1S = np.zeros(16000, dtype=np.float32)


@pytest.fixture
def two_utterances(eval_dir) -> bytes:
    """'ten of clubs', 1.5 s silence, 'go forward ten meters', 1.5 s silence."""
    return clips_s16(eval_dir, ["cards-001.wav", "goforward.wav"], gap_s=1.5)


async def run_session(raw_key: str, pcm: bytes, *, start: dict | None = None, pace_s: float = 0.0) -> Transcript:
    comm = communicator(raw_key)
    connected, _ = await comm.connect()
    assert connected
    transcript = Transcript()
    try:
        if start is not None:
            await send_json(comm, {"type": "start", **start})
        await send_audio(comm, pcm, pace_s=pace_s, transcript=transcript)
        await send_json(comm, {"type": "stop"})
        return await read_until_closed(comm, transcript)
    finally:
        await comm.disconnect(timeout=30)


@pytest.mark.parametrize("headers", [None, "not-a-key", "asr_000000000000_wrongsecret"])
async def test_missing_or_invalid_key_is_refused_with_4001_and_no_session(tenant_a, headers):
    comm = communicator(headers)
    connected, _ = await comm.connect()
    assert connected
    transcript = await read_until_closed(comm, Transcript(), timeout=5)
    await comm.disconnect()
    assert transcript.close_code == 4001
    assert transcript.error["code"] == "unauthenticated"
    assert await Session.objects.acount() == 0


async def test_revoked_key_is_refused(tenant_a):
    await asyncio.to_thread(account_services.api_key_revoke, tenant=tenant_a.tenant, prefix=tenant_a.api_key.prefix)
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    transcript = await read_until_closed(comm, Transcript(), timeout=5)
    await comm.disconnect()
    assert transcript.close_code == 4001
    assert await Session.objects.acount() == 0


async def test_wrong_secret_with_a_real_prefix_is_refused(tenant_a):
    forged = f"asr_{tenant_a.api_key.prefix}_{'x' * 43}"
    comm = communicator(forged)
    await comm.connect()
    transcript = await read_until_closed(comm, Transcript(), timeout=5)
    await comm.disconnect()
    assert transcript.close_code == 4001


async def test_full_session_sends_ready_partials_finals_closed_and_stores_them(tenant_a, two_utterances):
    transcript = await run_session(tenant_a.raw_key, two_utterances, start={"endpointing_ms": 800}, pace_s=0.05)
    kinds = [m["type"] for m in transcript.messages]
    assert kinds[0] == "ready" and kinds[-1] == "closed" and transcript.close_code == 1000
    assert transcript.of_type("partial"), "partials while speaking"
    finals = transcript.finals
    assert [f["segment"] for f in finals] == [0, 1]
    assert word_error_rate(["ten of clubs", "go forward ten meters"], [f["text"] for f in finals]) == 0.0
    for partial in transcript.of_type("partial"):
        later_final = [
            i for i, m in enumerate(transcript.messages) if m["type"] == "final" and m["segment"] == partial["segment"]
        ]
        assert later_final and later_final[0] > transcript.messages.index(partial)
    session_id = transcript.messages[0]["session_id"]
    session = await Session.objects.aget(pk=session_id)
    assert session.tenant_id == tenant_a.tenant.pk and session.api_key_id == tenant_a.api_key.pk
    assert session.status == "closed" and session.close_reason == "stop" and session.ended_at
    assert session.audio_seconds == pytest.approx(len(two_utterances) / 32000, abs=1e-6)
    assert transcript.messages[-1] == {
        "type": "closed",
        "session_id": session_id,
        "audio_seconds": round(len(two_utterances) / 32000, 3),
        "segments": 2,
    }
    stored = [s async for s in Segment.objects.filter(session_id=session_id).order_by("index")]
    assert [(s.index, s.text, s.reason) for s in stored] == [(f["segment"], f["text"], f["reason"]) for f in finals]


async def test_raw_pcm_without_start_uses_the_defaults(tenant_a, two_utterances):
    transcript = await run_session(tenant_a.raw_key, two_utterances)
    ready = transcript.messages[0]
    assert ready["type"] == "ready"
    assert ready["config"]["sample_rate"] == 16000 and ready["config"]["endpointing_ms"] == 800
    assert len(transcript.finals) == 2 and transcript.close_code == 1000


async def test_a_wav_file_sent_as_is_is_understood_from_its_header(tenant_a, eval_dir):
    data = (eval_dir / "real" / "goforward.wav").read_bytes()
    transcript = await run_session(tenant_a.raw_key, data)
    assert transcript.close_code == 1000
    assert word_error_rate(["go forward ten meters"], [" ".join(f["text"] for f in transcript.finals)]) == 0.0


async def test_float32_audio_at_44100_hz_is_resampled(tenant_a, eval_dir):
    import soxr

    audio = soxr.resample(np.concatenate([clip(eval_dir, "goforward.wav"), SILENCE_1S]), 16000, 44100)
    pcm = audio.astype("<f4").tobytes()
    transcript = await run_session(tenant_a.raw_key, pcm, start={"sample_rate": 44100, "encoding": "pcm_f32le"})
    assert transcript.close_code == 1000
    assert word_error_rate(["go forward ten meters"], [" ".join(f["text"] for f in transcript.finals)]) == 0.0
    assert transcript.messages[-1]["audio_seconds"] == pytest.approx(len(audio) / 44100, abs=1e-3)


async def test_disconnect_mid_utterance_stores_the_final_with_reason_disconnect(tenant_a, eval_dir, settings):
    # With resume on, this happens when the grace period ends (test_resume.py); here it is off.
    settings.ASR_RESUME_GRACE_S = 0
    speech = clip(eval_dir, "librivox-0870.wav")  # 7 s of continuous reading
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start"})
    await send_audio(comm, to_s16(speech[: 16000 * 4]))
    ready = await comm.receive_json_from(timeout=10)
    await comm.disconnect(timeout=30)  # the client vanishes in the middle of a sentence
    session = await Session.objects.aget(pk=ready["session_id"])
    assert session.close_reason == "disconnect" and session.status == "closed"
    segments = [s async for s in Segment.objects.filter(session=session)]
    assert len(segments) == 1 and segments[0].reason == "disconnect"
    assert "dashwood" in segments[0].text.lower()
    assert session.audio_seconds == pytest.approx(4.0)


async def test_finalize_mid_utterance_gives_a_client_final_and_the_session_goes_on(tenant_a, eval_dir):
    speech = clip(eval_dir, "librivox-0870.wav")
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    transcript = Transcript()
    try:
        await send_json(comm, {"type": "start", "interim_results": False})
        await send_audio(comm, to_s16(speech[: 16000 * 3]))
        await send_json(comm, {"type": "finalize"})
        await send_audio(comm, to_s16(np.concatenate([speech[16000 * 3 :], SILENCE_1S, SILENCE_1S])))
        await send_json(comm, {"type": "stop"})
        await read_until_closed(comm, transcript)
    finally:
        await comm.disconnect(timeout=30)
    finals = transcript.finals
    assert finals[0]["reason"] == "client" and finals[0]["end"] == pytest.approx(3.0, abs=0.05)
    assert len(finals) >= 2 and [f["segment"] for f in finals] == list(range(len(finals)))
    assert transcript.close_code == 1000
    assert await Segment.objects.filter(session_id=transcript.messages[0]["session_id"]).acount() == len(finals)


async def test_end_signal_ends_the_session_like_stop(tenant_a, two_utterances):
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_audio(comm, two_utterances)
    await send_json(comm, {"end_signal": True})
    transcript = await read_until_closed(comm, Transcript())
    await comm.disconnect()
    assert transcript.close_code == 1000 and len(transcript.finals) == 2


BAD_INPUTS = [
    ("text", "{not json", "bad_message"),
    ("text", "[1, 2]", "bad_message"),
    ("text", '{"type": "dance"}', "unknown_message_type"),
    ("text", '{"type": "start", "sample_rate": 4000}', "invalid_start"),
    ("text", '{"type": "start", "sample_rate": 96000}', "invalid_start"),
    ("text", '{"type": "start", "sample_rate": "16000"}', "invalid_start"),
    ("text", '{"type": "start", "encoding": "mp3"}', "invalid_start"),
    ("text", '{"type": "start", "channels": 6}', "invalid_start"),
    ("text", '{"type": "start", "language": "xx"}', "invalid_start"),
    ("text", '{"type": "start", "endpointing_ms": -5}', "invalid_start"),
    ("text", '{"type": "start", "max_utterance_s": 100000}', "invalid_start"),
    ("text", '{"type": "start", "interim_results": "yes"}', "invalid_start"),
    ("text", '{"type": "start", "endpointing": 500}', "invalid_start"),
    ("text", '{"type": "keepalive", "pad": "' + "x" * 5000 + '"}', "message_too_large"),
    ("bytes", b"\x01\x02\x03", "bad_audio"),
    ("bytes", b"\x00" * (64 * 1024 + 2), "frame_too_large"),
]


@pytest.mark.parametrize(("kind", "payload", "code"), BAD_INPUTS)
async def test_bad_input_gets_an_error_and_4400_and_the_server_keeps_serving(
    tenant_a, two_utterances, kind, payload, code
):
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    if kind == "text":
        await comm.send_to(text_data=payload)
    else:
        await comm.send_to(bytes_data=payload)
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4400
    assert transcript.error["code"] == code and transcript.error["message"]
    assert not [m for m in transcript.messages if m["type"] == "final"]
    # The next session on the same server works normally.
    follow_up = await run_session(tenant_a.raw_key, two_utterances)
    assert follow_up.close_code == 1000 and len(follow_up.finals) == 2


async def test_a_second_start_is_refused(tenant_a):
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start"})
    await send_json(comm, {"type": "start"})
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.error["code"] == "already_started" and transcript.close_code == 4400


async def test_odd_length_frame_mid_utterance_stores_what_was_said_before_the_error(tenant_a, eval_dir):
    speech = clip(eval_dir, "librivox-0870.wav")
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_audio(comm, to_s16(speech[: 16000 * 3]))
    await comm.send_to(bytes_data=b"\x00" * 1601)
    transcript = await read_until_closed(comm, Transcript(), timeout=30)
    await comm.disconnect()
    assert transcript.close_code == 4400 and transcript.error["code"] == "bad_audio"
    assert len(transcript.finals) == 1 and "dashwood" in transcript.finals[0]["text"].lower()
    session = await Session.objects.aget(pk=transcript.messages[0]["session_id"])
    assert session.close_reason == "bad_request" and await session.segments.acount() == 1


@pytest.mark.parametrize("name", ["awful.wav", "bad.wav", "evil.wav", "null.wav"])
async def test_malformed_wav_files_streamed_as_audio_get_a_clear_error(tenant_a, eval_dir, two_utterances, name):
    data = (eval_dir / "bad" / name).read_bytes()
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_audio(comm, data, frame_bytes=len(data))
    await send_json(comm, {"type": "stop"})
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4400, transcript.messages
    assert transcript.error["code"] in {"bad_audio", "no_audio"}
    assert "WAV" in transcript.error["message"]
    follow_up = await run_session(tenant_a.raw_key, two_utterances)
    assert follow_up.close_code == 1000 and len(follow_up.finals) == 2


async def test_wav_header_that_contradicts_start_is_refused(tenant_a, eval_dir):
    data = (eval_dir / "real" / "goforward.wav").read_bytes()
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start", "sample_rate": 8000})
    await comm.send_to(bytes_data=data[:3200])
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4400 and "16000 Hz" in transcript.error["message"]


async def test_idle_session_is_closed_with_4008(tenant_a, settings):
    settings.ASR_IDLE_TIMEOUT_S = 0.6
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start"})
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4008 and transcript.error["code"] == "idle_timeout"
    session = await Session.objects.aget(pk=transcript.messages[0]["session_id"])
    assert session.close_reason == "idle_timeout"


async def test_keepalive_holds_an_idle_session_open(tenant_a, settings):
    settings.ASR_IDLE_TIMEOUT_S = 0.8
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    await send_json(comm, {"type": "start"})
    for _ in range(6):
        await asyncio.sleep(0.3)
        await send_json(comm, {"type": "keepalive"})
    await send_json(comm, {"type": "stop"})
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 1000 and transcript.messages[-1]["type"] == "closed"


async def test_session_longer_than_the_limit_is_finalized_and_closed_with_4029(tenant_a, eval_dir, settings):
    settings.ASR_MAX_SESSION_S = 2.0
    speech = clip(eval_dir, "librivox-0870.wav")
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    transcript = Transcript()
    await send_audio(comm, to_s16(speech[: 16000 * 3]), frame_bytes=3200, pace_s=0.05, transcript=transcript)
    await read_until_closed(comm, transcript, timeout=10)
    await comm.disconnect()
    assert transcript.close_code == 4029 and transcript.error["code"] == "session_limit"
    assert transcript.finals and transcript.finals[-1]["reason"] == "max_length"
    session = await Session.objects.aget(pk=transcript.messages[0]["session_id"])
    assert session.close_reason == "session_limit" and await session.segments.acount() == len(transcript.finals)


async def test_sessions_belong_to_the_key_s_tenant_only(tenant_a, tenant_b, two_utterances):
    from transcription import selectors

    transcript = await run_session(tenant_a.raw_key, two_utterances)
    session_id = uuid.UUID(transcript.messages[0]["session_id"])
    assert await asyncio.to_thread(lambda: list(selectors.session_list(tenant_id=tenant_b.tenant.pk))) == []
    with pytest.raises(Session.DoesNotExist):
        await asyncio.to_thread(selectors.session_get, tenant_id=tenant_b.tenant.pk, session_id=session_id)
    assert (
        await asyncio.to_thread(
            lambda: selectors.segment_list(tenant_id=tenant_b.tenant.pk, session_id=session_id).count()
        )
        == 0
    )
    assert (
        await asyncio.to_thread(
            lambda: selectors.segment_list(tenant_id=tenant_a.tenant.pk, session_id=session_id).count()
        )
        == 2
    )
