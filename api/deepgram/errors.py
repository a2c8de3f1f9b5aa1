"""Errors as Deepgram's API reports them: ``{"err_code", "err_msg", "request_id"}``.

``err_code`` is our stable code in capitals, as on the live ``/v1/listen`` (gateway/protocols/
deepgram.py); the statuses are Deepgram's: 402 when the month's quota is used up (Deepgram's "out
of credits"), 429 for too many requests at once, 413 for a file over the limits.
"""

import uuid

from django.http import JsonResponse

from transcription.file_jobs import JobRefused


class DeepgramError(Exception):
    def __init__(self, status: int, code: str, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.request_id = request_id or str(uuid.uuid4())

    def body(self) -> dict[str, str]:
        return {"err_code": self.code.upper(), "err_msg": self.message, "request_id": self.request_id}

    def response(self) -> JsonResponse:
        return JsonResponse(self.body(), status=self.status)


def refusal_error(refusal: JobRefused) -> DeepgramError:
    """A refused upload: the quota is Deepgram's 402, the rest keeps our status (400, 413, 429)."""
    status = 402 if refusal.code == "quota_exceeded" else refusal.status
    return DeepgramError(status, refusal.code, refusal.message)
