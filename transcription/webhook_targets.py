"""Where a callback may go, and the one HTTP request that takes it there.

A callback URL is the client's, so it must not reach into our own network (SSRF): its host is
resolved and every address it resolves to must be public, both when the request names it and at
each delivery, and the request goes to the very address that was checked (no second DNS lookup
that could answer otherwise). Only http and https; one bounded request, no redirect followed, no
more of the answer read than a few bytes. ``ASR_WEBHOOK_ALLOW_PRIVATE`` lifts the address check
(development, tests, a receiver on the same private network).
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

MAX_URL_CHARS = 2048
RESPONSE_READ_BYTES = 1024  # what is read of a receiver's answer before the connection is dropped
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """A callback URL we will not call; the message is for the client."""


@dataclass(frozen=True)
class Target:
    """A checked callback URL: where to connect (``address``) and what to ask for there."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (refused, unreachable, timed out)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise TargetRefused(f"The callback URL must be at most {MAX_URL_CHARS} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise TargetRefused("The callback URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("The callback URL must be an http:// or https:// URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("Credentials in the callback URL are not supported.")
    return parts


def address_allowed(address: Address) -> bool:
    """Public unicast only: no private, loopback, link-local, multicast, reserved or unspecified address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    forbidden = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
    return address.is_global and not forbidden


def check(url: str) -> Target:
    """The URL as a Target on one of its host's addresses; TargetRefused when we will not call it.

    Blocking: it resolves the host. Every address of the host must be allowed, not just one.
    """
    parts = _split(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused(f"The callback URL's host {host!r} does not resolve.") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"The callback URL's host {host!r} does not resolve.")
    if not settings.ASR_WEBHOOK_ALLOW_PRIVATE and not all(address_allowed(a) for a in addresses):
        raise TargetRefused(
            "The callback URL resolves to a private, loopback, link-local, multicast or reserved address; "
            "callbacks go to public addresses only."
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=parts.scheme, host=host, port=port, address=str(addresses[0]), path=path)


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address, whatever the host name would resolve to now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target

    def connect(self) -> None:
        self.sock = socket.create_connection((self.target.address, self.target.port), self.timeout)


class _PinnedHTTPS(_PinnedHTTP):
    """TLS to the checked address, with the certificate verified for the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target, timeout)
        self.tls = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.target.host)


def send(target: Target, *, method: str, body: bytes, headers: dict[str, str]) -> Answer:
    """One request, no redirect followed (a 3xx is an answer like any other non-2xx); blocking."""
    timeout = settings.ASR_WEBHOOK_TIMEOUT_S
    connection = _PinnedHTTPS(target, timeout) if target.scheme == "https" else _PinnedHTTP(target, timeout)
    try:
        connection.request(method, target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(RESPONSE_READ_BYTES)
        return Answer(status=response.status)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(status=None, error=f"{type(exc).__name__}: no answer"[:200])
    finally:
        connection.close()
