"""Settings for the test suite: the real PostgreSQL of this machine unless DATABASE_URL says otherwise."""

import os
import tempfile
from pathlib import Path

import dj_database_url

os.environ.setdefault("ASR_DEV", "1")  # the development SECRET_KEY, for this run and the servers it starts

from .base import *  # noqa: E402, F403

DATABASES = {
    "default": dj_database_url.parse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/asrplatform"))
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ASR_PRELOAD = False
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}  # per run, never shared
# Uploads of this run only; exported so servers and workers the tests start share it.
MEDIA_ROOT = Path(os.environ.setdefault("ASR_MEDIA_ROOT", tempfile.mkdtemp(prefix="asr-test-media-")))
ASR_OUTBOX_DIR = Path(os.environ.setdefault("ASR_OUTBOX_DIR", tempfile.mkdtemp(prefix="asr-test-outbox-")))
