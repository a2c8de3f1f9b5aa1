"""``manage.py create_tenant NAME``: a tenant and its first API key; the key is the last line."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction

from accounts import services


class Command(BaseCommand):
    help = "Create a tenant with a first API key. Prints the key alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--plan", default="free", choices=list(settings.ASR_PLANS))

    def handle(self, *args: Any, name: str, plan: str, **options: Any) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("Tenant name must be 1 to 100 characters.")
        try:
            with transaction.atomic():
                tenant = services.tenant_create(name=name, plan=plan)
                _, raw = services.api_key_create(tenant=tenant, name="default")
        except IntegrityError:
            raise CommandError(f"A tenant named {name!r} already exists.") from None
        self.stdout.write(f"Created tenant {tenant.name!r} (id {tenant.pk}). Its API key, shown only once:")
        self.stdout.write(raw)
