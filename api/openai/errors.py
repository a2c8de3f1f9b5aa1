"""OpenAI's error shape and status codes, for our refusals too."""

from typing import Any

from django.http import JsonResponse

from transcription import file_jobs


class OpenAIError(Exception):
    """An error as OpenAI's API reports it: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": None, "code": self.code}}

    def response(self) -> JsonResponse:
        return JsonResponse(self.body(), status=self.status)


def refusal_error(refusal: file_jobs.JobRefused) -> OpenAIError:
    """Our refusal codes in OpenAI's vocabulary: quota is theirs ``insufficient_quota`` (429)."""
    if refusal.code == "quota_exceeded":
        return OpenAIError(429, refusal.message, kind="insufficient_quota", code="insufficient_quota")
    if refusal.status == 429:
        return OpenAIError(429, refusal.message, kind="rate_limit_error", code=refusal.code)
    return OpenAIError(refusal.status, refusal.message, code=refusal.code)
