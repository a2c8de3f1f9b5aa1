"""Production settings: the base settings, refusing to start without real secrets."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403

if "SECRET_KEY" not in os.environ or SECRET_KEY.startswith("embedded-insecure"):  # noqa: F405
    raise ImproperlyConfigured("Set SECRET_KEY to a long random value in production.")
if "DATABASE_URL" not in os.environ:
    raise ImproperlyConfigured("Set DATABASE_URL to a PostgreSQL database in production.")

DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# X-Forwarded-Proto is believed only from ASR_TRUSTED_PROXIES (asrplatform.edge.client_address sets
# the scheme from it), not from any client as SECURE_PROXY_SSL_HEADER would.
