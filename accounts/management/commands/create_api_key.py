"""``manage.py create_api_key TENANT_NAME``: a new key for a tenant; the key is the last line."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import selectors, services
from accounts.models import Tenant


class Command(BaseCommand):
    help = "Create an API key for a tenant. Prints the key alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_name")
        parser.add_argument("--name", default="default", help="A label for the key")

    def handle(self, *args: Any, tenant_name: str, name: str, **options: Any) -> None:
        try:
            tenant = selectors.tenant_get_by_name(name=tenant_name)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant named {tenant_name!r}.") from None
        api_key, raw = services.api_key_create(tenant=tenant, name=name[:100])
        self.stdout.write(f"Created API key {api_key.prefix} ({api_key.name}) for {tenant.name!r}, shown only once:")
        self.stdout.write(raw)
