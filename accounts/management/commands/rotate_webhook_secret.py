"""``manage.py rotate_webhook_secret TENANT_NAME``: a new callback signing secret; it is the last line."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import selectors, services
from accounts.models import Tenant


class Command(BaseCommand):
    help = "Give a tenant a new webhook signing secret (the old one stops verifying at once). Prints it last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_name")

    def handle(self, *args: Any, tenant_name: str, **options: Any) -> None:
        try:
            tenant = selectors.tenant_get_by_name(name=tenant_name)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant named {tenant_name!r}.") from None
        secret = services.webhook_secret_rotate(tenant_id=tenant.pk)
        self.stdout.write(f"New webhook signing secret for {tenant.name!r} (callbacks are signed with it from now on):")
        self.stdout.write(secret)
