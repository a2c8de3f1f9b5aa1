"""The endpoints: thin views that authenticate, read the form, create one file job and answer.

Each request runs as an ordinary file job (same limits, quota, metering and stored transcript) on
a session that records ``protocol="openai"``. Errors before an answer starts come in OpenAI's
shape and status codes; a stream reports a later one as an ``error`` event, which the SDK raises.
"""

import logging
import uuid
from collections.abc import AsyncIterator, Callable

from channels.db import database_sync_to_async
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.credentials import parse_bearer
from accounts.models import ApiKey
from api.openai import formats, forms, progress
from api.openai.errors import OpenAIError, refusal_error
from transcription import file_jobs
from transcription.engine_settings import model_catalogue
from transcription.models import FileTranscription, Session

logger = logging.getLogger(__name__)


@csrf_exempt
async def transcriptions(request: HttpRequest) -> HttpResponseBase:
    """OpenAI's ``POST /v1/audio/transcriptions``: when the job is done, or as it runs with ``stream=true``."""
    return await _answer(request, forms.transcription_request)


@csrf_exempt
async def translations(request: HttpRequest) -> HttpResponseBase:
    """OpenAI's ``POST /v1/audio/translations``: the speech in English text, when the job is done."""
    return await _answer(request, lambda form: forms.translation_request(form, model_catalogue()))


async def _answer(request: HttpRequest, read_form: Callable[[QueryDict], forms.AudioRequest]) -> HttpResponseBase:
    if request.method != "POST":
        return OpenAIError(405, "Use POST.").response()
    try:
        api_key = await database_sync_to_async(authenticate)(request)
        upload = request.FILES.get("file")
        if not isinstance(upload, UploadedFile):
            raise OpenAIError(400, "You must provide a file parameter (multipart form).")
        asked = read_form(request.POST)
        job = await database_sync_to_async(_create_job)(api_key, upload, asked)
        if asked.stream:
            return _event_stream(_transcript_events(job.pk, api_key.tenant_id))
        job = await progress.until_done(job.pk, api_key.tenant_id)
        segments = await progress.segments(job)
    except OpenAIError as error:
        return error.response()
    return formats.render(job, segments, asked.response_format, words=asked.words, task=asked.task)


def authenticate(request: HttpRequest) -> ApiKey:
    raw = parse_bearer(request.headers.get("Authorization", ""))
    api_key = account_selectors.api_key_authenticate(raw_key=raw) if raw else None
    if api_key is None:
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
    account_services.api_key_mark_used(api_key_id=api_key.pk)
    return api_key


def _create_job(api_key: ApiKey, upload: UploadedFile, asked: forms.AudioRequest) -> FileTranscription:
    try:
        return file_jobs.job_create(
            tenant_id=api_key.tenant_id,
            api_key_id=api_key.pk,
            upload=upload,
            options=asked.options,
            protocol=Session.Protocol.OPENAI,
        )
    except file_jobs.JobRefused as refusal:
        raise refusal_error(refusal) from None


def _event_stream(events: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy (nginx) passes each event on at once
    return response


async def _transcript_events(job_id: uuid.UUID, tenant_id: int) -> AsyncIterator[bytes]:
    """A delta per final as the job stores it, then the done event; a failure as an ``error`` event."""
    sent, spoken = -1, False  # the last segment index sent; whether any text was
    try:
        async for job in progress.follow(job_id, tenant_id):
            new = await progress.segments(job, after=sent)
            for piece in formats.pieces(new, first=not spoken):
                spoken = True
                yield formats.delta_event(piece)
            sent = new[-1].index if new else sent
            if job.status == FileTranscription.Status.DONE:
                yield formats.done_event(job, await progress.segments(job))
    except OpenAIError as error:
        logger.info("openai stream ended by an error job_id=%s tenant_id=%s code=%s", job_id, tenant_id, error.code)
        yield formats.sse({"type": "error", **error.body()})
    except Exception:  # the status line is sent: an event is the only way left to tell the client
        logger.exception("openai stream failed job_id=%s tenant_id=%s", job_id, tenant_id)
        failure = OpenAIError(500, "The server failed while streaming; the job goes on.", kind="server_error")
        yield formats.sse({"type": "error", **failure.body()})


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    """OpenAI's ``GET /v1/models``: our models that can run here, and OpenAI's names for the default."""
    try:
        await database_sync_to_async(authenticate)(request)
    except OpenAIError as error:
        return error.response()
    names = [info.name for info in model_catalogue().available()] + list(forms.OPENAI_MODELS)
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "asrplatform"} for name in names]
    return JsonResponse({"object": "list", "data": data})
