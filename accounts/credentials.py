"""Reading credentials off a raw request, for checks made before Django has parsed it.

One bearer parser for every entry point (scheme case-insensitive, as RFC 9110 says), and a check
that an HTTP request carries a valid credential, made before its body is read.
"""

from http.cookies import CookieError, SimpleCookie
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest

from accounts import selectors

Headers = list[tuple[bytes, bytes]]


def header_value(headers: Headers, name: bytes) -> str | None:
    """The first value of a header (names compared case-insensitively)."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def parse_bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; None for any other scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def parse_authorization(authorization: str | None) -> str | None:
    """The credential of ``Authorization: Bearer <key>`` or Deepgram's ``Authorization: Token <key>``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() in ("bearer", "token") and token else None


OPENAI_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."


def subprotocol_credential(subprotocols: list[str]) -> str | None:
    """A browser's credential in ``Sec-WebSocket-Protocol``: Deepgram's ``token, <key>`` (or
    ``bearer, <token>``), or OpenAI's ``realtime, openai-insecure-api-key.<key>``."""
    if len(subprotocols) >= 2 and subprotocols[0].strip().lower() in ("token", "bearer"):
        return subprotocols[1].strip() or None
    for offered in subprotocols:
        if offered.strip().startswith(OPENAI_SUBPROTOCOL_PREFIX):
            return offered.strip()[len(OPENAI_SUBPROTOCOL_PREFIX) :] or None
    return None


def _session_request(session_key: str) -> HttpRequest:
    """A request with only the session that ``django.contrib.auth.get_user`` reads."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return request


def _session_user_is_active(headers: Headers) -> bool:
    cookie_header = header_value(headers, b"cookie")
    if not cookie_header:
        return False
    try:
        cookies = SimpleCookie(cookie_header)
    except CookieError:
        return False
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None or not morsel.value:
        return False
    user = get_user(_session_request(morsel.value))
    return bool(user.is_authenticated and user.is_active)


def http_credentials_refusal(headers: Headers, *, token_scheme: bool = False) -> str | None:
    """Why the request is not authenticated (a client-facing sentence), or None when it is.

    Accepts what the REST API accepts: a valid API key, or a logged-in user's session cookie; with
    ``token_scheme`` (Deepgram's API) the key may also come as ``Authorization: Token <key>``.
    Synchronous: it reads the database.
    """
    authorization = header_value(headers, b"authorization")
    raw_key = parse_authorization(authorization) if token_scheme else parse_bearer(authorization)
    if raw_key is not None:
        if selectors.api_key_authenticate(raw_key=raw_key) is None:
            return "Invalid, revoked or suspended API key."
        return None
    if _session_user_is_active(headers):
        return None
    return "Authentication credentials were not provided."
