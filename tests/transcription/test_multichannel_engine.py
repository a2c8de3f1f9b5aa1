"""The multichannel engine on its own (no server): real models, real eval audio, the gateway's
replay buffer. Each channel is its own utterance stream; one segment sequence for the session."""

import numpy as np
import pytest

from tests.support.audio import clip, silence, to_s16
from transcription.dispatch.replay import ReplayBuffer
from transcription.engine import SessionLimits, parse_start
from transcription.engine.audio import AudioFormatError
from transcription.engine.multichannel import MultichannelSession, open_engine_session, split_channels
from transcription.engine.session import StreamingSession

RATE = 16000


def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    n = max(len(left), len(right))
    out = np.zeros((n, 2), dtype=np.float32)
    out[: len(left), 0], out[: len(right), 1] = left, right
    return out


def config(**fields):
    return parse_start({"channels": 2, "multichannel": True, **fields}, SessionLimits())


def test_interleaved_frames_split_into_channels_and_a_partial_frame_is_bad_audio():
    frames = np.array([[1, -1], [2, -2], [3, -3]], dtype="<i2")
    left, right = split_channels(frames.tobytes(), config())
    assert np.frombuffer(left, "<i2").tolist() == [1, 2, 3] and np.frombuffer(right, "<i2").tolist() == [-1, -2, -3]
    floats = np.array([[0.5, -0.25]], dtype="<f4")
    assert split_channels(floats.tobytes(), config(encoding="pcm_f32le"))[1] == np.float32(-0.25).tobytes()
    with pytest.raises(AudioFormatError, match="not a whole number"):
        split_channels(frames.tobytes()[:-2], config())


def test_mixed_down_sessions_keep_the_single_stream_engine(engine_models):
    mixed = parse_start({"channels": 2}, SessionLimits())
    assert isinstance(open_engine_session(mixed, engine_models), StreamingSession)
    assert isinstance(open_engine_session(config(), engine_models), MultichannelSession)
    assert mixed.metered_channels == 1 and config().metered_channels == 2
    assert config().bytes_per_metered_second * 2 == config().bytes_per_second


def test_each_channel_ends_its_own_utterances_and_finals_share_one_sequence_in_the_order_made(engine_models, eval_dir):
    # Channel 1 speaks while channel 0 is in the middle of a long utterance, and stops first.
    long_talk = np.concatenate([clip(eval_dir, "librivox-0870.wav"), silence(2.0)])
    reply = np.concatenate([silence(1.0), clip(eval_dir, "goforward.wav"), silence(2.0)])
    audio = stereo(long_talk, reply)
    engine = open_engine_session(config(interim_results=False), engine_models, first_segment=5)
    finals = []
    for i in range(0, len(audio), 1600):
        finals += engine.accept_audio(to_s16(audio[i : i + 1600].reshape(-1)))
    finals += engine.finalize("stop")

    assert [f.channel for f in finals] == [1, 0], finals
    assert [f.segment for f in finals] == [5, 6]
    assert "forward" in finals[0].text.lower() and "dashwood" in finals[1].text.lower()
    assert finals[0].start < finals[1].end and finals[0].start > finals[1].start
    assert engine.audio_seconds == pytest.approx(len(audio) / RATE)


def test_both_channels_get_partials_while_both_speak(engine_models, eval_dir):
    audio = stereo(clip(eval_dir, "librivox-0870.wav"), clip(eval_dir, "jfk.wav"))
    engine = open_engine_session(config(), engine_models)
    partials, clock = [], 0.0
    for i in range(0, len(audio), 1600):
        engine.accept_audio(to_s16(audio[i : i + 1600].reshape(-1)))
        clock += 0.1
        while engine.partial_due(clock):
            assert engine.seconds_until_partial(clock) == 0.0
            event = engine.decode_partial(clock)
            if event is not None:
                partials.append(event)
    by_channel = {c: [p for p in partials if p.channel == c] for c in (0, 1)}
    assert len(by_channel[0]) >= 3 and len(by_channel[1]) >= 3, [(p.channel, p.text) for p in partials]
    both_speak_s = 6.0  # neither channel starves the other while both speak
    early = [p.channel for p in partials if p.end <= both_speak_s]
    assert early.count(0) >= 3 and early.count(1) >= 3, early


def test_a_replay_silences_each_channel_up_to_its_own_last_final():
    buffer = ReplayBuffer(config(), max_seconds=30.0)
    second = to_s16(np.full((RATE, 2), 0.5, dtype=np.float32).reshape(-1))
    for _ in range(3):
        buffer.append(second)
    buffer.trim_to(2.0, channel=0)  # channel 0's last final ended at 2 s; channel 1 is mid-utterance since 0
    assert buffer.start_s == 0.0
    replayed = np.frombuffer(b"".join(buffer.chunks()), "<i2").reshape(-1, 2)
    assert not replayed[: 2 * RATE, 0].any() and replayed[2 * RATE :, 0].all(), "channel 0 does not hear it again"
    assert replayed[:, 1].all(), "channel 1's open utterance is replayed whole"
    buffer.trim_to(1.5, channel=1)
    assert buffer.start_s == 1.5 and len(b"".join(buffer.chunks())) == round(1.5 * RATE) * 4

    mixed = ReplayBuffer(parse_start({"channels": 2}, SessionLimits()), max_seconds=30.0)
    mixed.append(second)
    mixed.trim_to(0.5, channel=None)
    assert mixed.start_s == 0.5 and b"".join(mixed.chunks()) == second[RATE // 2 * 4 :]
