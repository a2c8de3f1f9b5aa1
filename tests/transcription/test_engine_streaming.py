"""The engine on the 14 real eval clips: endpointing, accuracy against offline decoding, rates."""

import numpy as np
import pytest

from bench.evaluation import normalize_text, word_error_rate
from transcription.engine import SessionLimits, StreamingSession, parse_start
from transcription.engine.audio import AudioFormatError

from .streaming import (
    CLIP_GAP_S,
    eval_clip,
    eval_session,
    finals_by_clip,
    s16le_frames,
    spans_more_than_one_clip,
    stream_through_engine,
)

pytestmark = pytest.mark.slow
WER_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def offline_wer(engine_models, eval_dir):
    """The same model decoding each clip on its own the standard way (faster-whisper's 30 s window)."""
    session = eval_session(eval_dir, gap_s=2.0)
    hypotheses = [
        engine_models.recognizer.transcribe(
            session.audio[c.start_sample : c.end_sample], language="en", fit_window=False
        )
        for c in session.clips
    ]
    return word_error_rate([c.reference for c in session.clips], hypotheses)


def streamed_wer(outcome, clips) -> float:
    per_clip = finals_by_clip(outcome.finals, clips)
    return word_error_rate([c.reference for c in clips], [" ".join(f.text for f in fs) for fs in per_clip])


@pytest.mark.parametrize(
    ("sample_rate", "encoding"),
    [(16000, "pcm_s16le"), (8000, "pcm_s16le"), (44100, "pcm_s16le"), (44100, "pcm_f32le")],
)
def test_one_final_per_clip_and_wer_close_to_offline(engine_models, eval_dir, offline_wer, sample_rate, encoding):
    # Kennedy pauses for up to 1.2 s inside jfk.wav ("...fellow Americans — ask not — what..."),
    # longer than a 1 s gap, so no silence endpointer can tell those apart (see the 1 s test
    # below). Here the gaps are 3 s and the endpoint 1.5 s: the boundaries are unambiguous.
    session = eval_session(eval_dir, gap_s=3.0)
    outcome = stream_through_engine(
        engine_models, session, sample_rate=sample_rate, encoding=encoding, endpointing_ms=1500
    )
    per_clip = finals_by_clip(outcome.finals, session.clips)
    assert [len(fs) for fs in per_clip] == [1] * len(session.clips), [[f.text for f in fs] for fs in per_clip]
    assert all(f.reason == "vad" for f in outcome.finals)
    for (final,), clip in zip(per_clip, session.clips, strict=True):
        assert clip.start_s - 0.4 <= final.start < final.end <= clip.end_s + 0.4, (final, clip)
    assert [f.segment for f in outcome.finals] == list(range(len(outcome.finals)))
    wer = streamed_wer(outcome, session.clips)
    assert wer <= offline_wer + WER_TOLERANCE, (wer, offline_wer)


def test_default_endpointing_with_one_second_gaps_never_merges_clips(engine_models, eval_dir, offline_wer):
    session = eval_session(eval_dir, gap_s=1.0)
    outcome = stream_through_engine(engine_models, session)
    assert not [f.text for f in outcome.finals if spans_more_than_one_clip(f, session.clips)]
    per_clip = finals_by_clip(outcome.finals, session.clips)
    assert all(per_clip), "every clip gets at least one final"
    assert streamed_wer(outcome, session.clips) <= offline_wer + WER_TOLERANCE


class CountingRecognizer:
    """The real recognizer, counting how much audio it was asked to decode."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def transcribe(self, audio, **kwargs):
        self.calls += 1
        return self.real.transcribe(audio, **kwargs)


def test_silence_and_noise_are_never_sent_to_the_decoder(engine_models):
    models = type(engine_models)(vad=engine_models.vad, recognizer=CountingRecognizer(engine_models.recognizer))
    engine = StreamingSession(parse_start({}, SessionLimits()), models)
    rng = np.random.default_rng(0)
    quiet = np.concatenate([np.zeros(16000 * 5), rng.normal(0, 0.002, 16000 * 5)]).astype(np.float32)
    events = []
    for i, frame in s16le_frames(quiet):
        events += engine.accept_audio(frame)
        if engine.partial_due(i / 16000 + 100):
            events.append(engine.decode_partial(i / 16000 + 100))
    events += engine.finalize("stop")
    assert events == []
    assert models.recognizer.calls == 0


def test_partials_precede_the_final_of_the_same_segment(engine_models, eval_dir):
    session = eval_session(eval_dir, gap_s=2.0)
    jfk = next(c for c in session.clips if c.name == "jfk.wav")
    clip_only = session.__class__(session.audio[jfk.start_sample - 8000 : jfk.end_sample + 32000], 16000, [])
    outcome = stream_through_engine(engine_models, clip_only, partials=True, endpointing_ms=1500)
    assert len(outcome.finals) == 1
    assert len(outcome.partials) >= 3
    assert {p.segment for p in outcome.partials} == {0}
    assert all(p.start == outcome.finals[0].start for p in outcome.partials)


def test_utterance_is_cut_at_max_utterance_s(engine_models, eval_dir):
    session = eval_session(eval_dir, gap_s=2.0)
    # librivox-0870 is 7.1 s of continuous reading: with a 3 s limit it must be cut at least twice.
    clip = next(c for c in session.clips if c.name == "librivox-0870.wav")
    audio = session.audio[clip.start_sample : clip.end_sample + 32000]
    outcome = stream_through_engine(
        engine_models, session.__class__(audio, 16000, []), max_utterance_s=3, endpointing_ms=1200
    )
    cut = [f for f in outcome.finals if f.reason == "max_length"]
    assert len(cut) >= 2
    assert all(f.end - f.start <= 3.0 + 1e-6 for f in outcome.finals)
    joined = " ".join(f.text for f in outcome.finals)
    assert word_error_rate([clip.reference], [joined]) < 0.35


def test_client_finalize_ends_the_utterance_mid_speech(engine_models, eval_dir):
    _, audio = eval_clip(eval_dir, "librivox-0870.wav")  # 7 s without a pause
    engine = StreamingSession(parse_start({}, SessionLimits()), engine_models)
    events = []
    half = len(audio) // 2 // 1600 * 1600
    for _, frame in s16le_frames(audio, stop=half):
        events += engine.accept_audio(frame)
    events += engine.finalize("client")
    assert events and events[-1].reason == "client"
    assert abs(events[-1].end - half / 16000) < 0.05
    for _, frame in s16le_frames(audio, start=half):
        events += engine.accept_audio(frame)
    events += engine.finalize("stop")
    assert events[-1].reason == "stop" and events[-1].segment == events[-2].segment + 1
    assert [e.segment for e in events] == list(range(len(events)))


def test_non_finite_float_audio_is_rejected(engine_models):
    engine = StreamingSession(parse_start({"encoding": "pcm_f32le"}, SessionLimits()), engine_models)
    with pytest.raises(AudioFormatError, match="NaN"):
        engine.accept_audio(np.array([0.0, np.nan, 0.1, 0.2], dtype="<f4").tobytes())


def test_audio_seconds_are_exact_at_any_rate(engine_models):
    engine = StreamingSession(parse_start({"sample_rate": 44100}, SessionLimits()), engine_models)
    for _ in range(37):
        engine.accept_audio(np.zeros(4410, dtype="<i2").tobytes())
    assert engine.audio_seconds == pytest.approx(3.7, abs=1e-9)


def test_final_reuses_the_decode_made_during_trailing_silence(engine_models, eval_dir):
    models = type(engine_models)(vad=engine_models.vad, recognizer=CountingRecognizer(engine_models.recognizer))
    clip, audio = eval_clip(eval_dir, "goforward.wav", trailing_silence_s=2.0)
    engine = StreamingSession(parse_start({"interim_results": False}, SessionLimits()), models)
    finals = []
    for _, frame in s16le_frames(audio):
        finals += engine.accept_audio(frame)
        if engine.partial_due(0.0):
            assert engine.decode_partial(0.0) is None  # no partials were asked for
    assert [f.reason for f in finals] == ["vad"]
    assert word_error_rate([clip.reference], [finals[0].text]) == 0.0
    assert models.recognizer.calls == 1, "the speculative decode was the final"


def test_speech_after_a_speculation_discards_it(engine_models, eval_dir):
    """A pause shorter than the endpoint: the speculation made in it must not become the final."""
    models = type(engine_models)(vad=engine_models.vad, recognizer=CountingRecognizer(engine_models.recognizer))
    _, first = eval_clip(eval_dir, "cards-001.wav", trailing_silence_s=0.25)
    _, second = eval_clip(eval_dir, "cards-003.wav", trailing_silence_s=2.0)
    engine = StreamingSession(parse_start({"interim_results": False}, SessionLimits()), models)
    finals, speculated_at = [], []
    for i, frame in s16le_frames(np.concatenate([first, second])):
        finals += engine.accept_audio(frame)
        if engine.partial_due(0.0):
            speculated_at.append(i)
            engine.decode_partial(0.0)
    assert [f.reason for f in finals] == ["vad"]
    assert len(speculated_at) == 2 and speculated_at[0] < len(first) < speculated_at[1], speculated_at
    words = normalize_text(finals[0].text).split()
    assert "ten" in words and "seven" in words, finals[0].text  # both clips, not the first one's speculation
    assert models.recognizer.calls == 2, "the second speculation was the final"


@pytest.mark.parametrize("endpointing_ms", [800, 1600])
def test_speculation_starts_after_a_quarter_of_the_endpoint_and_no_partial_follows_it(
    engine_models, eval_dir, endpointing_ms
):
    """A partial after the speculation would repeat its text and hold the endpoint audio back."""
    _, audio = eval_clip(eval_dir, "cards-002.wav", trailing_silence_s=2.0)
    engine = StreamingSession(parse_start({"endpointing_ms": endpointing_ms}, SessionLimits()), engine_models)
    engine.partial_interval_s = 0.2  # partials fall due several times during the endpoint silence
    decodes, finals = [], []  # (speculative?, trailing silence in ms) of each decode, in order
    for i, frame in s16le_frames(audio):
        now = i / 16000  # the clock of a real-time stream: partials fall due every interval
        finals += engine.accept_audio(frame)
        if finals:
            break
        if engine.partial_due(now):
            decodes.append((engine.speculation_due(), engine.vad.trailing_silence_ms()))
            engine.decode_partial(now)
    assert [f.reason for f in finals] == ["vad"]
    speculations = [silence for speculative, silence in decodes if speculative]
    assert len(speculations) == 1, decodes
    # The VAD reports silence every 200 ms chunk, so the speculation starts in the chunk that crosses a quarter.
    assert endpointing_ms / 4 <= speculations[0] < endpointing_ms / 4 + 200, decodes
    assert decodes[-1][0], f"a partial was decoded after the speculation: {decodes}"


def test_a_final_is_the_same_whether_or_not_it_was_speculated(engine_models, eval_dir):
    """Whether the speculative decode ran before the endpoint is a race (load, audio sent faster
    than real time); the user's final must not depend on who won it."""
    session = eval_session(eval_dir, gap_s=CLIP_GAP_S)
    speculated = stream_through_engine(engine_models, session, partials=True, endpointing_ms=800)
    endpoint_only = stream_through_engine(engine_models, session, partials=False, endpointing_ms=800)
    assert [(f.start, f.end) for f in speculated.finals] == [(f.start, f.end) for f in endpoint_only.finals]
    assert [f.text for f in speculated.finals] == [f.text for f in endpoint_only.finals]


def test_a_session_continued_elsewhere_keeps_counting_time_and_segments(engine_models, eval_dir):
    clip, audio = eval_clip(eval_dir, "goforward.wav", trailing_silence_s=2.0)
    config = parse_start({"interim_results": False}, SessionLimits())
    engine = StreamingSession(config, engine_models, resume_at_s=100.0, first_segment=5)
    finals = []
    for _, frame in s16le_frames(audio):
        finals += engine.accept_audio(frame)
    finals += engine.finalize("stop")
    assert [f.segment for f in finals] == [5]
    assert 100.0 <= finals[0].start < finals[0].end <= 100.0 + len(audio) / 16000


@pytest.mark.parametrize(("thrifty", "window_frames"), [(False, 3000), (True, 1500)])
def test_a_short_final_takes_the_30_s_window_unless_the_decoders_are_congested(
    engine_models, eval_dir, monkeypatch, thrifty, window_frames
):
    """Under congestion (StreamingSession.thrifty_when) a short final costs half: a 15 s window."""
    model = engine_models.recognizer.model
    windows: list[int] = []
    real_encode = model.encode

    def encode(features, *args, **kwargs):  # the real encoder, with each window's length noted
        windows.append(features.shape[-1])
        return real_encode(features, *args, **kwargs)

    monkeypatch.setattr(model, "encode", encode)
    clip, audio = eval_clip(eval_dir, "goforward.wav", trailing_silence_s=2.0)  # 2.5 s: a short final
    engine = StreamingSession(parse_start({"interim_results": False}, SessionLimits()), engine_models)
    engine.thrifty_when = lambda: thrifty
    finals = []
    for _, frame in s16le_frames(audio):
        finals += engine.accept_audio(frame)
        if engine.partial_due(0.0):
            engine.decode_partial(0.0)
    assert [f.reason for f in finals] == ["vad"]
    assert word_error_rate([clip.reference], [finals[0].text]) == 0.0
    assert windows == [window_frames]


def test_an_utterances_first_partial_queues_with_speculative_finals_and_later_ones_as_partials(engine_models, eval_dir):
    from transcription.runner.loop import SessionLoop
    from transcription.runner.scheduler import PARTIAL, SPECULATIVE

    _, audio = eval_clip(eval_dir, "librivox-0870.wav")  # 7 s of continuous speech
    engine = StreamingSession(parse_start({}, SessionLimits()), engine_models)
    classes = []
    for i, frame in s16le_frames(audio):
        engine.accept_audio(frame)
        if engine.partial_due(i / 16000) and not engine.speculation_due():
            classes.append(SessionLoop._decode_class(engine))
            engine.decode_partial(i / 16000)
    assert classes[0] == SPECULATIVE and engine.partial_sent
    assert set(classes[classes.index(PARTIAL) :]) == {PARTIAL}, classes
