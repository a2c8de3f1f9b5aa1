"""Helpers for streaming real eval audio through the engine in tests (not a test module)."""

from dataclasses import dataclass

import numpy as np
import soxr

from bench.evaluation import ClipSpan, ConcatenatedSession, concatenate_clips
from tests.support.audio import to_s16
from transcription.engine import SessionLimits, StreamingSession, TranscriptEvent, parse_start


@dataclass
class StreamOutcome:
    finals: list[TranscriptEvent]
    partials: list[TranscriptEvent]


def encode(samples: np.ndarray, encoding: str) -> bytes:
    if encoding == "pcm_f32le":
        return samples.astype("<f4").tobytes()
    return to_s16(samples)


def stream_through_engine(
    models,
    session: ConcatenatedSession,
    *,
    sample_rate: int = 16000,
    encoding: str = "pcm_s16le",
    frame_ms: int = 100,
    partials: bool = False,
    **start_fields,
) -> StreamOutcome:
    """Stream the session in frames as a client would (resampled first when asked), then stop."""
    audio = session.audio if sample_rate == 16000 else soxr.resample(session.audio, 16000, sample_rate, "HQ")
    config = parse_start({"sample_rate": sample_rate, "encoding": encoding, **start_fields}, SessionLimits())
    engine = StreamingSession(config, models)
    outcome = StreamOutcome([], [])
    step = sample_rate * frame_ms // 1000
    for i in range(0, len(audio), step):
        outcome.finals += engine.accept_audio(encode(audio[i : i + step], encoding))
        if partials and engine.partial_due(float(i) / sample_rate + 10):
            event = engine.decode_partial(float(i) / sample_rate + 10)
            if event:
                outcome.partials.append(event)
    outcome.finals += engine.finalize("stop")
    return outcome


def finals_by_clip(finals: list[TranscriptEvent], clips: list[ClipSpan]) -> list[list[TranscriptEvent]]:
    """Assign each final to the clip its time span overlaps most."""
    assigned: list[list[TranscriptEvent]] = [[] for _ in clips]
    for final in finals:
        overlaps = [min(final.end, c.end_s) - max(final.start, c.start_s) for c in clips]
        assigned[int(np.argmax(overlaps))].append(final)
    return assigned


def spans_more_than_one_clip(final: TranscriptEvent, clips: list[ClipSpan], tolerance_s: float = 0.3) -> bool:
    touched = [c for c in clips if min(final.end, c.end_s) - max(final.start, c.start_s) > tolerance_s]
    return len(touched) > 1


def eval_session(eval_dir, *, gap_s: float) -> ConcatenatedSession:
    return concatenate_clips(eval_dir / "real", gap_s=gap_s, tail_s=2.0)


CLIP_GAP_S = 2.0  # silence between clips in eval_clip's session


def eval_clip(eval_dir, name: str, *, trailing_silence_s: float = 0.0) -> tuple[ClipSpan, np.ndarray]:
    """One eval clip's 16 kHz audio, followed by up to CLIP_GAP_S of silence (endpoints need some)."""
    assert trailing_silence_s <= CLIP_GAP_S, "more would run into the next clip"
    session = eval_session(eval_dir, gap_s=CLIP_GAP_S)
    clip = next(c for c in session.clips if c.name == name)
    return clip, session.audio[clip.start_sample : clip.end_sample + round(trailing_silence_s * 16000)]


def s16le_frames(audio: np.ndarray, start: int = 0, stop: int | None = None, frame: int = 1600):
    """(sample offset, 100 ms frame as pcm_s16le bytes) over audio[start:stop], as a client sends it."""
    for i in range(start, len(audio) if stop is None else stop, frame):
        yield i, encode(audio[i : i + frame], "pcm_s16le")
