from django.contrib import admin
from django.urls import include, path

from accounts.ratelimit import rate_limited_login
from api.deepgram import views as deepgram_views
from api.openai import realtime as openai_realtime
from api.openai import views as openai_views
from asrplatform.health import healthz, readyz

urlpatterns = [
    # The admin's login shares the site login's failed-attempt limit (one budget per address).
    path("admin/login/", rate_limited_login(admin.site.login)),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    # OpenAI's audio API, for its SDK and the apps built on it (api/openai/).
    path("v1/audio/transcriptions", openai_views.transcriptions),
    path("v1/audio/translations", openai_views.translations),
    path("v1/models", openai_views.models),
    # Client secrets for OpenAI Realtime in a browser; its WebSocket, /v1/realtime, is the gateway's.
    path("v1/realtime/client_secrets", openai_realtime.client_secrets),
    path("v1/realtime/transcription_sessions", openai_realtime.transcription_sessions),
    # Deepgram's pre-recorded API (api/deepgram/); its WebSocket on the same path is the gateway's.
    path("v1/listen", deepgram_views.listen),
    path("", include("api.urls")),
    path("", include("accounts.urls")),
    path("", include("transcription.urls")),
]
