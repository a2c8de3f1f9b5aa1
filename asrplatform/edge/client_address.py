"""The client's address: the TCP peer, or what trusted proxies say it is.

Rate limits are keyed on this address, so it must not be something a client chooses. The
peer's ``X-Forwarded-For`` is believed only when the peer is one of ``ASR_TRUSTED_PROXIES``, and
then only as far as it was written by trusted hops: walking the list from the right, the first
entry that is not a trusted proxy is the client. Entries left of it were sent by the client and
are ignored. With no trusted proxies configured (the default), the header is ignored entirely.
"""

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def parse_networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    """``"10.0.0.5"`` or ``"10.0.0.0/24"`` each; raises ValueError on a malformed entry."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def trusted_networks() -> tuple[Network, ...]:
    return parse_networks(tuple(settings.ASR_TRUSTED_PROXIES))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51000"
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """Every ``X-Forwarded-For`` entry, in order, over however many such headers there are."""
    entries: list[str] = []
    for name, value in headers:
        if name.lower() == b"x-forwarded-for":
            entries.extend(part.strip() for part in value.decode("latin-1").split(","))
    return [entry for entry in entries if entry]


def client_address(
    peer: str | None, headers: Iterable[tuple[bytes, bytes]], networks: tuple[Network, ...]
) -> str | None:
    """The rightmost address not written by a trusted proxy; the peer when it is not trusted."""
    current = _address(peer) if peer else None
    if not _trusted(current, networks):
        return peer
    for entry in reversed(forwarded_for(headers)):
        address = _address(entry)
        if address is None:  # garbage where a trusted hop would have written an address
            break
        current = address
        if not _trusted(address, networks):
            break
    return str(current)


def forwarded_scheme(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"x-forwarded-proto":
            scheme = value.decode("latin-1").split(",")[-1].strip().lower()
            if scheme in {"http", "https"}:
                return scheme
    return None


class ClientAddressMiddleware:
    """Rewrites ``scope["client"]`` (and the scheme) from trusted proxies' headers only."""

    def __init__(self, app: Any) -> None:
        self.app = app
        trusted_networks()  # a malformed ASR_TRUSTED_PROXIES fails at start, not on a request

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        networks = trusted_networks()
        if scope["type"] not in {"http", "websocket"} or not networks:
            return await self.app(scope, receive, send)
        peer = scope.get("client")
        peer_host = str(peer[0]) if peer else None
        if not _trusted(_address(peer_host) if peer_host else None, networks):
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        address = client_address(peer_host, headers, networks)
        scope = dict(scope, client=(address, 0))
        scheme = forwarded_scheme(headers)
        if scheme is not None:
            secure = scheme == "https"
            scope["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" else scheme
        return await self.app(scope, receive, send)
