"""API key format and hashing, kept apart from the ORM so it is easy to audit.

A key looks like ``asr_<prefix>_<secret>``. The prefix is public (shown in the admin and used to
find the row); the secret is stored only as HMAC-SHA256 keyed with the server's SECRET_KEY, so a
leaked database alone cannot be used to forge or test keys.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_SCHEME = "asr"
PREFIX_BYTES = 6
SECRET_BYTES = 32


@dataclass(frozen=True)
class ParsedKey:
    prefix: str
    secret: str


def generate_key() -> tuple[str, ParsedKey]:
    """Return a new full key string and its parts."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{KEY_SCHEME}_{prefix}_{secret}", ParsedKey(prefix=prefix, secret=secret)


def parse_key(raw: str) -> ParsedKey | None:
    """Split a presented key into prefix and secret; None when it cannot be one of ours."""
    if len(raw) > 200:
        return None
    scheme, sep, rest = raw.partition("_")
    if scheme != KEY_SCHEME or not sep:
        return None
    prefix, sep, secret = rest.partition("_")
    if not sep or len(prefix) != PREFIX_BYTES * 2 or not secret:
        return None
    return ParsedKey(prefix=prefix, secret=secret)


def hash_secret(secret: str, *, pepper: str) -> str:
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored_hash: str, *, pepper: str) -> bool:
    return hmac.compare_digest(hash_secret(secret, pepper=pepper), stored_hash)


STREAM_TOKEN_BYTES = 32


def generate_stream_token() -> str:
    """A random single-use WebSocket token; only its hash is stored."""
    return secrets.token_urlsafe(STREAM_TOKEN_BYTES)
