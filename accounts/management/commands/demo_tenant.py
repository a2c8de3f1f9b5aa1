"""``manage.py demo_tenant``: the embedded quick start's tenant, with a fresh key to try it with.

Keys are stored hashed, so an old key cannot be shown again: each run mints a new ``demo`` key
(revoking the previous one) and prints it with a ready-to-paste client command.
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts import services
from accounts.models import ApiKey, Tenant

DEMO_TENANT = "demo"
DEMO_KEY_NAME = "demo (make run)"


class Command(BaseCommand):
    help = "Create the demo tenant if missing and print a new API key for it (last line)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/v1/transcribe")

    def handle(self, *args, url: str, **options) -> None:  # type: ignore[no-untyped-def]
        with transaction.atomic():
            tenant = Tenant.objects.filter(name=DEMO_TENANT).first() or services.tenant_create(
                name=DEMO_TENANT, plan="pro"
            )
            ApiKey.objects.filter(tenant=tenant, name=DEMO_KEY_NAME, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            _, raw = services.api_key_create(tenant=tenant, name=DEMO_KEY_NAME)
        self.stdout.write(
            f"\nDemo tenant {tenant.name!r}. Try it from another terminal:\n\n"
            f"  .venv/bin/python -m transcription.client ../shared/eval/real/jfk.wav --realtime \\\n"
            f"      --url {url} --api-key {raw}\n\n"
            "API key (shown once; a new one is minted each time `make run` starts):"
        )
        self.stdout.write(raw)
