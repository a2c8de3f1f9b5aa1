"""``manage.py revoke_api_key TENANT_NAME PREFIX``: stop a key from working."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import selectors, services
from accounts.models import ApiKey, Tenant


class Command(BaseCommand):
    help = "Revoke an API key of a tenant, given its prefix."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_name")
        parser.add_argument("prefix")

    def handle(self, *args: Any, tenant_name: str, prefix: str, **options: Any) -> None:
        try:
            tenant = selectors.tenant_get_by_name(name=tenant_name)
            api_key = services.api_key_revoke(tenant=tenant, prefix=prefix)
        except (Tenant.DoesNotExist, ApiKey.DoesNotExist):
            raise CommandError(f"No key {prefix!r} for tenant {tenant_name!r}.") from None
        self.stdout.write(f"Revoked {api_key.prefix} ({api_key.name}).")
