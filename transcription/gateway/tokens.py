"""Resume tokens: random, sent to the client once, stored only as a hash."""

import hashlib
import hmac
import secrets


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_resume_token() -> tuple[str, str]:
    """A fresh resume token and the hash stored for it (the token itself is only sent to the client)."""
    token = secrets.token_urlsafe(24)
    return token, token_hash(token)


def token_matches(token: str, stored_hash: str) -> bool:
    return bool(stored_hash) and hmac.compare_digest(token_hash(token), stored_hash)
