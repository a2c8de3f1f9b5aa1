"""OpenAI's response formats (json, text, srt, vtt, verbose_json) and its transcript stream events."""

import json
from typing import Any

from django.http import HttpResponse, JsonResponse

from transcription.exports import srt_timestamp
from transcription.models import FileTranscription, Segment

LANGUAGE_NAMES = {"en": "english", "zh": "chinese", "de": "german", "fr": "french", "es": "spanish", "ja": "japanese"}


def pieces(segments: list[Segment], *, first: bool = True) -> list[str]:
    """The segments' text as OpenAI's stream deltas: joined with "", they are the transcript.

    ``first``: nothing was sent before these (no space in front of the first piece)."""
    texts = [s.text.strip() for s in segments if s.text.strip()]
    return [text if first and number == 0 else " " + text for number, text in enumerate(texts)]


def transcript(segments: list[Segment]) -> str:
    return "".join(pieces(segments))


def usage(job: FileTranscription) -> dict[str, Any]:
    """Billed seconds, as OpenAI counts them for whisper-1: whole seconds, at least one."""
    return {"type": "duration", "seconds": max(1, round(job.session.audio_seconds))}


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event as OpenAI sends them: a ``data:`` line of JSON, no event name."""
    return b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"


def delta_event(delta: str) -> bytes:
    return sse({"type": "transcript.text.delta", "delta": delta})


def done_event(job: FileTranscription, segments: list[Segment]) -> bytes:
    return sse({"type": "transcript.text.done", "text": transcript(segments), "usage": usage(job)})


def render(
    job: FileTranscription, segments: list[Segment], response_format: str, *, words: bool, task: str = "transcribe"
) -> HttpResponse:
    """The finished job in ``response_format``; translations (``task="translate"``) as OpenAI writes them."""
    text = transcript(segments)
    translated = task == "translate"
    if response_format == "text":
        return HttpResponse(text + "\n", content_type="text/plain; charset=utf-8")
    if response_format in ("srt", "vtt"):
        return HttpResponse(
            _subtitles(segments, vtt=response_format == "vtt"), content_type="text/plain; charset=utf-8"
        )
    if response_format == "json":
        return JsonResponse({"text": text} if translated else {"text": text, "usage": usage(job)})
    body: dict[str, Any] = {
        "task": task,
        "language": "english" if translated else _language_name(segments, job),
        "duration": round(job.session.audio_seconds, 3),
        "text": text,
        "segments": [_segment(i, s) for i, s in enumerate(segments)],
    }
    if not translated:
        body["usage"] = usage(job)
    if words:
        body["words"] = [
            {"word": w["word"].strip(), "start": w["start"], "end": w["end"]} for s in segments for w in s.words or ()
        ]
    return HttpResponse(json.dumps(body, ensure_ascii=False), content_type="application/json")


def _segment(number: int, segment: Segment) -> dict[str, Any]:
    """A segment as OpenAI's verbose_json has it; figures we do not keep are neutral."""
    return {
        "id": number,
        "seek": 0,
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": 0.0,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.0,
    }


def _subtitles(segments: list[Segment], *, vtt: bool) -> str:
    cues = []
    for number, segment in enumerate((s for s in segments if s.text.strip()), start=1):
        start, end = srt_timestamp(segment.start), srt_timestamp(segment.end)
        if vtt:
            cues.append(f"{start.replace(',', '.')} --> {end.replace(',', '.')}\n{segment.text.strip()}\n")
        else:
            cues.append(f"{number}\n{start} --> {end}\n{segment.text.strip()}\n")
    return ("WEBVTT\n\n" if vtt else "") + "\n".join(cues)


def _language_name(segments: list[Segment], job: FileTranscription) -> str:
    """OpenAI names the language in English words ("english")."""
    code = next((s.language for s in segments if s.language), "") or job.session.language
    return LANGUAGE_NAMES.get(code, code)
