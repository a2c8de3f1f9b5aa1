"""Channels middleware that turns an ``Authorization: Bearer`` API key into a tenant on the scope.

The consumer decides what to do with an unauthenticated connection (it must accept the socket to
be able to send a protocol error and close with 4001), so this middleware only annotates.
"""

from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async

from accounts import selectors, services


@dataclass(frozen=True)
class StreamPrincipal:
    """Who a WebSocket session acts for; plain ids so it can travel to tasks and threads."""

    tenant_id: int
    tenant_name: str
    api_key_id: int | None


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


@database_sync_to_async
def principal_for_key(raw_key: str) -> StreamPrincipal | None:
    api_key = selectors.api_key_authenticate(raw_key=raw_key)
    if api_key is None:
        return None
    services.api_key_mark_used(api_key_id=api_key.pk)
    return StreamPrincipal(tenant_id=api_key.tenant_id, tenant_name=api_key.tenant.name, api_key_id=api_key.pk)


class ApiKeyAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        principal = None
        token = bearer_token(scope.get("headers", []))
        if token is not None:
            principal = await principal_for_key(token)
        scope = dict(scope, principal=principal, presented_credentials=token is not None)
        return await self.inner(scope, receive, send)
