"""OpenAI's audio API over our file jobs: the OpenAI SDK and the apps built on it, unmodified.

``POST /v1/audio/transcriptions`` takes the same multipart form as OpenAI's (``file``, ``model``,
``language``, ``prompt``, ``temperature``, ``response_format``, ``timestamp_granularities[]``),
runs it as an ordinary file job (same limits, quota, metering and stored transcript) and answers
once it is done, in the requested format. ``GET /v1/models`` lists our models and the OpenAI
names that stand for the default one. Errors come in OpenAI's shape and status codes.
"""

import asyncio
import json
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.credentials import parse_bearer
from accounts.models import ApiKey
from transcription import file_jobs
from transcription.engine.models import model_registry
from transcription.engine_settings import model_settings_from_django
from transcription.exports import srt_timestamp
from transcription.models import FileTranscription, Segment, Session

# OpenAI's model names, answered by the deployment's default model (ASR_MODEL).
OPENAI_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
POLL_S = 0.2


class OpenAIError(Exception):
    """An error as OpenAI's API reports it: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code

    def response(self) -> JsonResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": None, "code": self.code}}
        return JsonResponse(body, status=self.status)


def refusal_error(refusal: file_jobs.JobRefused) -> OpenAIError:
    """Our refusal codes in OpenAI's vocabulary: quota is theirs ``insufficient_quota`` (429)."""
    if refusal.code == "quota_exceeded":
        return OpenAIError(429, refusal.message, kind="insufficient_quota", code="insufficient_quota")
    if refusal.status == 429:
        return OpenAIError(429, refusal.message, kind="rate_limit_error", code=refusal.code)
    return OpenAIError(refusal.status, refusal.message, code=refusal.code)


def _authenticate(request: HttpRequest) -> ApiKey:
    raw = parse_bearer(request.headers.get("Authorization", ""))
    api_key = account_selectors.api_key_authenticate(raw_key=raw) if raw else None
    if api_key is None:
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
    account_services.api_key_mark_used(api_key_id=api_key.pk)
    return api_key


def _options(form: Any) -> tuple[dict[str, Any], str, bool]:
    """The job's options from OpenAI's form, the response format, and whether words were asked for."""
    response_format = form.get("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise OpenAIError(400, f"response_format must be one of {', '.join(RESPONSE_FORMATS)}.")
    granularities = form.getlist("timestamp_granularities[]") or form.getlist("timestamp_granularities")
    if set(granularities) - {"word", "segment"}:
        raise OpenAIError(400, "timestamp_granularities may hold 'word' and 'segment'.")
    words = "word" in granularities
    if words and response_format != "verbose_json":
        raise OpenAIError(400, "Word timestamps need response_format 'verbose_json'.")
    model = form.get("model") or ""
    if not model:
        raise OpenAIError(400, "You must provide a model parameter.")
    options: dict[str, Any] = {"model": None if model in OPENAI_MODELS else model, "word_timestamps": words}
    for name in ("language", "prompt"):
        if form.get(name):
            options[name] = form.get(name)
    return options, response_format, words


@csrf_exempt
async def transcriptions(request: HttpRequest) -> HttpResponse:
    """OpenAI's ``POST /v1/audio/transcriptions``, answered when the file job is done."""
    if request.method != "POST":
        return OpenAIError(405, "Use POST.").response()
    try:
        api_key = await database_sync_to_async(_authenticate)(request)
        upload = request.FILES.get("file")
        if not isinstance(upload, UploadedFile):
            raise OpenAIError(400, "You must provide a file parameter (multipart form).")
        options, response_format, words = _options(request.POST)
        try:
            job = await database_sync_to_async(file_jobs.job_create)(
                tenant_id=api_key.tenant_id,
                api_key_id=api_key.pk,
                upload=upload,
                options=options,
                protocol=Session.Protocol.OPENAI,
            )
        except file_jobs.JobRefused as refusal:
            raise refusal_error(refusal) from None
        job = await _until_done(job.pk, api_key.tenant_id)
        segments = await database_sync_to_async(_segments)(job)
    except OpenAIError as error:
        return error.response()
    return render(job, segments, response_format, words=words)


async def _until_done(job_id: uuid.UUID, tenant_id: int) -> FileTranscription:
    deadline = time.monotonic() + settings.ASR_OPENAI_WAIT_S
    while True:
        job = await FileTranscription.objects.select_related("session").aget(pk=job_id, tenant_id=tenant_id)
        if job.status == FileTranscription.Status.FAILED:
            raise OpenAIError(400, job.error_message or "The audio could not be transcribed.", code=job.error_code)
        if job.status == FileTranscription.Status.DONE:
            return job
        if time.monotonic() > deadline:
            raise OpenAIError(
                504,
                f"Not done within {settings.ASR_OPENAI_WAIT_S:g} s; it goes on as /api/v1/transcriptions/{job_id}.",
                kind="timeout",
            )
        await asyncio.sleep(POLL_S)


def _segments(job: FileTranscription) -> list[Segment]:
    return list(Segment.objects.filter(session_id=job.session_id, session__tenant_id=job.tenant_id).order_by("index"))


def render(job: FileTranscription, segments: list[Segment], response_format: str, *, words: bool) -> HttpResponse:
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    duration = round(job.session.audio_seconds, 3)
    usage = {"type": "duration", "seconds": max(1, round(duration))}
    if response_format == "text":
        return HttpResponse(text + "\n", content_type="text/plain; charset=utf-8")
    if response_format in ("srt", "vtt"):
        return HttpResponse(
            _subtitles(segments, vtt=response_format == "vtt"), content_type="text/plain; charset=utf-8"
        )
    if response_format == "json":
        return JsonResponse({"text": text, "usage": usage})
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": _language_name(segments, job),
        "duration": duration,
        "text": text,
        "segments": [_segment(i, s) for i, s in enumerate(segments)],
        "usage": usage,
    }
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


LANGUAGE_NAMES = {"en": "english", "zh": "chinese", "de": "german", "fr": "french", "es": "spanish", "ja": "japanese"}


def _language_name(segments: list[Segment], job: FileTranscription) -> str:
    """OpenAI names the language in English words ("english")."""
    code = next((s.language for s in segments if s.language), "") or job.session.language
    return LANGUAGE_NAMES.get(code, code)


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    """OpenAI's ``GET /v1/models``: our models that can run here, and OpenAI's names for the default."""
    try:
        await database_sync_to_async(_authenticate)(request)
    except OpenAIError as error:
        return error.response()
    registry = model_registry(model_settings_from_django())
    names = [info.name for info in registry.available()] + list(OPENAI_MODELS)
    created = 0
    data = [{"id": name, "object": "model", "created": created, "owned_by": "asrplatform"} for name in names]
    return JsonResponse({"object": "list", "data": data})
