"""A stored transcript as plain text, SubRip subtitles or JSON (the downloads of the transcript page)."""

from collections.abc import Sequence
from typing import Any

from transcription.models import Segment, Session

FORMATS = {
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "json": "application/json",
}


def srt_timestamp(seconds: float) -> str:
    """SubRip's ``HH:MM:SS,mmm``."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def transcript_txt(segments: Sequence[Segment]) -> str:
    lines = [s.text.strip() for s in segments if s.text.strip()]
    return "\n".join(lines) + ("\n" if lines else "")


def transcript_srt(segments: Sequence[Segment]) -> str:
    cues = []
    for number, segment in enumerate((s for s in segments if s.text.strip()), start=1):
        times = f"{srt_timestamp(segment.start)} --> {srt_timestamp(segment.end)}"
        cues.append(f"{number}\n{times}\n{segment.text.strip()}\n")
    return "\n".join(cues)


def transcript_json(session: Session, segments: Sequence[Segment]) -> dict[str, Any]:
    return {
        "session_id": str(session.id),
        "started_at": session.started_at.isoformat(),
        "ended_at": session.ended_at.isoformat() if session.ended_at else None,
        "status": session.status,
        "close_reason": session.close_reason,
        "language": session.language,
        "engine": session.engine,
        "audio_seconds": round(session.audio_seconds, 3),
        "segments": [
            {
                "segment": s.index,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "reason": s.reason,
            }
            for s in segments
        ],
    }
