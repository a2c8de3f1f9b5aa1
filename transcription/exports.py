"""A stored transcript as plain text, SubRip subtitles or JSON (the downloads of the transcript page).

A multichannel session's transcript is its channels' turns in time order, each labelled with its
channel as people count them ("Channel 1" is channel 0 of the audio and of the API); a mixed-down
session's reads as it always did.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transcription.models import Segment, Session

FORMATS = {
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "json": "application/json",
}


@dataclass(frozen=True)
class Turn:
    """Consecutive segments of one channel (the whole transcript, channel None, when mixed down)."""

    channel: int | None
    segments: tuple[Segment, ...]

    @property
    def label(self) -> str:
        return channel_label(self.channel)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


def channel_label(channel: int | None) -> str:
    """How pages and downloads name a channel: counted from 1; "" for a mixed-down session."""
    return "" if channel is None else f"Channel {channel + 1}"


def is_multichannel(segments: Sequence[Segment]) -> bool:
    return any(s.channel is not None for s in segments)


def in_time_order(segments: Sequence[Segment]) -> list[Segment]:
    """Segments as a reader follows them: by start time across channels (numbers are per session, in
    the order finals were made, so a long turn on one channel is numbered after a short reply on another)."""
    if not is_multichannel(segments):
        return list(segments)
    return sorted(segments, key=lambda s: (s.start, s.channel or 0, s.index))


def turns(segments: Sequence[Segment]) -> list[Turn]:
    """The spoken segments as turns in time order: a new turn each time the channel changes."""
    result: list[Turn] = []
    for segment in in_time_order(segments):
        if not segment.text.strip():
            continue
        if result and result[-1].channel == segment.channel:
            result[-1] = Turn(segment.channel, (*result[-1].segments, segment))
        else:
            result.append(Turn(segment.channel, (segment,)))
    return result


def srt_timestamp(seconds: float) -> str:
    """SubRip's ``HH:MM:SS,mmm``."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def _labelled(segment: Segment) -> str:
    label = channel_label(segment.channel)
    return f"{label}: {segment.text.strip()}" if label else segment.text.strip()


def transcript_txt(segments: Sequence[Segment]) -> str:
    if is_multichannel(segments):
        lines = [f"{turn.label}: {turn.text}" for turn in turns(segments)]
    else:
        lines = [s.text.strip() for s in segments if s.text.strip()]
    return "\n".join(lines) + ("\n" if lines else "")


def transcript_srt(segments: Sequence[Segment]) -> str:
    cues = []
    for number, segment in enumerate((s for s in in_time_order(segments) if s.text.strip()), start=1):
        times = f"{srt_timestamp(segment.start)} --> {srt_timestamp(segment.end)}"
        cues.append(f"{number}\n{times}\n{_labelled(segment)}\n")
    return "\n".join(cues)


def transcript_json(session: Session, segments: Sequence[Segment]) -> dict[str, Any]:
    multichannel = is_multichannel(segments) or session.channels > 1
    data: dict[str, Any] = {
        "session_id": str(session.id),
        "started_at": session.started_at.isoformat(),
        "ended_at": session.ended_at.isoformat() if session.ended_at else None,
        "status": session.status,
        "close_reason": session.close_reason,
        "language": session.language,
        "engine": session.engine,
        "audio_seconds": round(session.audio_seconds, 3),
    }
    if multichannel:
        data |= {"channels": session.channels, "duration_s": round(session.duration_s, 3)}
    data["segments"] = [
        {
            "segment": s.index,
            **({"channel": s.channel} if multichannel else {}),
            "start": round(s.start, 3),
            "end": round(s.end, 3),
            "text": s.text,
            "reason": s.reason,
        }
        for s in in_time_order(segments)
    ]
    return data
