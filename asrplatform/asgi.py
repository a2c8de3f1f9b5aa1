"""ASGI entry point: HTTP through Django, WebSockets through the API-key-authenticated gateway."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asrplatform.settings.base")
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from accounts.middleware import ApiKeyAuthMiddleware  # noqa: E402
from transcription.dispatch import get_dispatcher  # noqa: E402
from transcription.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Embedded mode serves its own static files; behind a proxy, serve STATIC_ROOT there instead.
        "http": ASGIStaticFilesHandler(django_http) if settings.ASR_SERVE_STATIC else django_http,
        "websocket": ApiKeyAuthMiddleware(URLRouter(websocket_urlpatterns)),
    }
)

if settings.ASR_PRELOAD and settings.ASR_DISPATCH == "local":
    get_dispatcher().preload()  # type: ignore[attr-defined]
    # Embedded mode runs file jobs in this process: pick up those a previous process left behind.
    from transcription.file_jobs import resume_local_jobs  # noqa: E402

    resume_local_jobs()
