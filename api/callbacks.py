"""The callback bodies this app defines, registered with transcription's delivery loop at start-up.

transcription/webhooks.py sends callbacks but knows no wire format (it sits below the API layer):
each format is rendered here, from the ended job, when its attempt is made.
"""

from typing import Any

from rest_framework.renderers import JSONRenderer

from api import serializers
from api.deepgram import results
from transcription import selectors, webhooks
from transcription.models import FileTranscription, WebhookDelivery


def rest_body(job: FileTranscription, context: dict[str, Any]) -> bytes:
    """``callback_url`` of ``POST /api/v1/transcriptions``: the job as ``GET /api/v1/transcriptions/{id}`` shows it."""
    jobs = selectors.file_job_list(tenant_id=job.tenant_id).select_related("callback")
    job = jobs.prefetch_related("session__segments").get(pk=job.pk)
    return JSONRenderer().render(serializers.TranscriptionDetailSerializer(job).data)


def register() -> None:
    webhooks.register_payload(WebhookDelivery.Payload.DEEPGRAM, results.callback_body)
    webhooks.register_payload(WebhookDelivery.Payload.REST, rest_body)
