"""Production settings: the base settings, refusing to start without real secrets."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403

if SECRET_KEY == DEV_SECRET_KEY:  # noqa: F405
    raise ImproperlyConfigured("Set SECRET_KEY to a long random value in production.")
if "DATABASE_URL" not in os.environ:
    raise ImproperlyConfigured("Set DATABASE_URL to a PostgreSQL database in production.")

DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# X-Forwarded-Proto is believed only from ASR_TRUSTED_PROXIES (asrplatform.edge.client_address sets
# the scheme from it), not from any client as SECURE_PROXY_SSL_HEADER would.
# Browsers keep to https for a year once they have seen it (set 0 while trying TLS out).
SECURE_HSTS_SECONDS = env_int("ASR_HSTS_SECONDS", 365 * 24 * 3600)  # noqa: F405
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ASR_HSTS_INCLUDE_SUBDOMAINS", False)  # noqa: F405
SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"] = [  # noqa: F405
    "rest_framework.permissions.AllowAny"
    if env_bool("ASR_API_DOCS_PUBLIC", False)  # noqa: F405
    else "rest_framework.permissions.IsAuthenticated"
]
