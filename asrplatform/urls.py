from django.contrib import admin
from django.urls import include, path

from accounts.ratelimit import rate_limited_login
from asrplatform.health import healthz, readyz

urlpatterns = [
    # The admin's login shares the site login's failed-attempt limit (one budget per address).
    path("admin/login/", rate_limited_login(admin.site.login)),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    path("", include("api.urls")),
    path("", include("accounts.urls")),
    path("", include("transcription.urls")),
]
