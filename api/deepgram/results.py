"""An ended file job as Deepgram's pre-recorded response (its SDK's ``ListenV1Response``).

The stored finals become one channel with one alternative (the whole transcript and its words), or
with ``multichannel`` one such channel per channel of the audio, and, when asked, ``utterances``,
one per final (with its channel). Whisper writes punctuation and case itself, so the
transcript is punctuated whatever ``punctuate`` said; each word has Deepgram's bare ``word`` (lower
case, no punctuation around it) and its ``punctuated_word``. The same JSON is a callback's body.
"""

import json
import uuid
from collections import Counter
from typing import Any

from django.conf import settings

from api.deepgram.errors import DeepgramError
from transcription import selectors
from transcription.engine.registry import AUTO
from transcription.engine_settings import model_catalogue
from transcription.gateway.protocols.deepgram import bare_word, model_uuid
from transcription.models import FileTranscription, Segment


def _words(segment: Segment) -> list[dict[str, Any]]:
    words = []
    for raw in segment.words or ():
        text = str(raw.get("word", "")).strip()
        if text:
            words.append({
                "word": bare_word(text),
                "start": round(float(raw["start"]), 3),
                "end": round(float(raw["end"]), 3),
                "confidence": round(float(raw.get("probability", 0.0)), 4),
                "punctuated_word": text,
            })  # fmt: skip
    return words


def _confidence(words: list[dict[str, Any]]) -> float:
    return round(sum(w["confidence"] for w in words) / len(words), 4) if words else 0.0


def _utterance(job: FileTranscription, segment: Segment) -> dict[str, Any]:
    words = [{**word, "speaker": 0} for word in _words(segment)]
    return {
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "confidence": _confidence(words),
        "channel": segment.channel or 0,
        "transcript": segment.text.strip(),
        "words": words,
        "speaker": 0,
        "id": str(uuid.uuid5(job.pk, str(segment.index))),
    }


def response_body(job: FileTranscription, segments: list[Segment], context: dict[str, Any]) -> dict[str, Any]:
    """The response of a done job; ``context`` holds what the request gave (``sha256``, ``utterances``)."""
    spoken = [s for s in segments if s.text.strip()]
    channels = job.session.channels
    by_channel = [[s for s in spoken if (s.channel or 0) == c] for c in range(channels)]
    results: dict[str, Any] = {"channels": [_channel(job, of_channel) for of_channel in by_channel]}
    if context.get("utterances"):
        in_time = sorted(spoken, key=lambda s: (s.start, s.channel or 0)) if channels > 1 else spoken
        results["utterances"] = [_utterance(job, s) for s in in_time]
    model = job.session.engine or settings.ASR_MODEL
    info = model_catalogue().get(model)
    model_info = {"name": model, "version": "asrplatform", "arch": info.engine if info else "whisper"}
    metadata = {
        "transaction_key": "deprecated",
        "request_id": str(job.pk),
        "sha256": context.get("sha256", ""),
        "created": job.created_at.isoformat().replace("+00:00", "Z"),
        "duration": round(job.session.duration_s, 3),
        "channels": channels,
        "models": [model_uuid(model)],
        "model_info": {model_uuid(model): model_info},
    }
    return {"metadata": metadata, "results": results}


def _channel(job: FileTranscription, spoken: list[Segment]) -> dict[str, Any]:
    """One channel's transcript: one alternative, all its words (the detected language if asked)."""
    words = [w for s in spoken for w in _words(s)]
    alternative = {"transcript": " ".join(s.text.strip() for s in spoken), "confidence": _confidence(words)}
    channel: dict[str, Any] = {"alternatives": [{**alternative, "words": words}]}
    if job.session.language == AUTO:
        detected = Counter(s.language for s in spoken if s.language).most_common(1)
        channel["detected_language"] = detected[0][0] if detected else ""
    return channel


def failure(job: FileTranscription) -> DeepgramError:
    """A failed job as Deepgram's error: 500 for our fault, 400 for the audio's."""
    status = 500 if job.error_code == "internal_error" else 400
    message = job.error_message or "The audio could not be transcribed."
    return DeepgramError(status, job.error_code or "bad_request", message, request_id=str(job.pk))


def callback_body(job: FileTranscription, context: dict[str, Any]) -> bytes:
    """A callback's body (transcription/webhooks.py): the response, or the error of a failed job."""
    if job.status == FileTranscription.Status.FAILED:
        return json.dumps(failure(job).body()).encode()
    segments = list(selectors.segment_list(tenant_id=job.tenant_id, session_id=job.session_id))
    return json.dumps(response_body(job, segments, context), ensure_ascii=False).encode()
