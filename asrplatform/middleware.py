"""Django middleware of the project's own: the Content-Security-Policy header on every page."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    """Adds ``ASR_CONTENT_SECURITY_POLICY`` (when set) to responses, except under ``ASR_CSP_EXEMPT_PATHS``
    (the API docs' Swagger UI runs an inline script)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.ASR_CONTENT_SECURITY_POLICY
        if policy and not request.path.startswith(tuple(settings.ASR_CSP_EXEMPT_PATHS)):
            response.headers.setdefault("Content-Security-Policy", policy)
        return response
