"""ASGI entry point: HTTP through Django, WebSockets through the API-key-authenticated gateway.

In front of both: the client's address from trusted proxies only, and request bodies refused by
size and credentials before they are read (``asrplatform.edge``). Serve it with
``python -m asrplatform.server`` (uvicorn, which streams bodies to the application).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asrplatform.settings.base")
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from accounts.middleware import ApiKeyAuthMiddleware  # noqa: E402
from asrplatform.edge.body_limits import BodyLimitMiddleware  # noqa: E402
from asrplatform.edge.client_address import ClientAddressMiddleware  # noqa: E402
from transcription.dispatch import get_dispatcher  # noqa: E402
from transcription.gateway.routing import websocket_urlpatterns  # noqa: E402
from transcription.sweeper import lifespan  # noqa: E402

# Embedded mode serves its own static files; behind a proxy, serve STATIC_ROOT there instead.
http_app = ASGIStaticFilesHandler(django_http) if settings.ASR_SERVE_STATIC else django_http
application = ClientAddressMiddleware(
    ProtocolTypeRouter(
        {
            "http": BodyLimitMiddleware(http_app),
            "websocket": ApiKeyAuthMiddleware(URLRouter(websocket_urlpatterns)),
            "lifespan": lifespan,  # sweeps the sessions a killed server left open (transcription.sweeper)
        }
    )
)

if settings.ASR_PRELOAD and settings.ASR_DISPATCH == "local":
    from transcription.dispatch.local import LocalDispatcher  # noqa: E402

    dispatcher = get_dispatcher()
    assert isinstance(dispatcher, LocalDispatcher)
    dispatcher.preload()
    # Embedded mode runs file jobs in this process: pick up those a previous process left behind.
    from transcription.file_jobs import resume_local_jobs  # noqa: E402

    resume_local_jobs()
