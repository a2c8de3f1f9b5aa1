"""``manage.py demo_tenant``: the embedded quick start's tenant, with a fresh key to try it with.

Keys are stored hashed, so an old key cannot be shown again: each run mints a new ``demo`` key
(revoking the previous one) and prints it with ways to try the server that work on any machine:
the browser page, and the client on a WAV file the user has (or makes with espeak-ng).
"""

import shutil
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts import services
from accounts.models import ApiKey, Tenant

DEMO_TENANT = "demo"
DEMO_KEY_NAME = "demo (make run)"
HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def site_url(ws_url: str) -> str:
    """The pages' base URL (``http://host:port``) of the server whose WebSocket URL is given."""
    parts = urlsplit(ws_url)
    return f"{HTTP_SCHEMES.get(parts.scheme, parts.scheme or 'http')}://{parts.netloc}"


def try_it(*, ws_url: str, key: str, espeak: bool) -> str:
    """The instructions printed before the key."""
    site = site_url(ws_url)
    lines = [
        f"Demo tenant {DEMO_TENANT!r} is ready. Try it while the server runs:",
        "",
        f"  In a browser: sign up at {site}/signup/, then speak at {site}/record/",
        "",
        "  From another terminal, on a WAV file of yours (PCM or float, 8-48 kHz, mono or stereo):",
        f"    .venv/bin/python -m asrclient your.wav --realtime --url {ws_url} --api-key {key}",
    ]
    if espeak:
        lines += [
            "",
            "  No WAV at hand? espeak-ng makes one:",
            '    espeak-ng -w hello.wav "Hello. This is a test of the speech recognition service."',
        ]
    lines += ["", "API key (shown once; a new one is minted each time `make run` starts):"]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Create the demo tenant if missing and print a new API key for it (last line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            default="ws://127.0.0.1:8000/ws/v1/transcribe",
            help="the server's WebSocket URL, used in the printed instructions",
        )

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        with transaction.atomic():
            tenant = Tenant.objects.filter(name=DEMO_TENANT).first() or services.tenant_create(
                name=DEMO_TENANT, plan="pro"
            )
            ApiKey.objects.filter(tenant=tenant, name=DEMO_KEY_NAME, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            _, raw = services.api_key_create(tenant=tenant, name=DEMO_KEY_NAME)
        self.stdout.write("\n" + try_it(ws_url=url, key=raw, espeak=shutil.which("espeak-ng") is not None))
        self.stdout.write(raw)
