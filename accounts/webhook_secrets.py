"""A tenant's webhook signing secret: made, sealed for the database, opened to sign a callback.

Unlike an API key, the server must be able to use this secret (it is an HMAC key), so it cannot be
stored as a hash. It is stored sealed (Fernet, keyed from SECRET_KEY): a leaked database alone does
not give it away. Changing SECRET_KEY makes stored secrets unreadable; the tenant then rotates it.
"""

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

SECRET_SCHEME = "whsec"
SECRET_BYTES = 32
_KEY_CONTEXT = b"asrplatform webhook signing secret\x00"


def generate_secret() -> str:
    return f"{SECRET_SCHEME}_{secrets.token_urlsafe(SECRET_BYTES)}"


def _fernet(pepper: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(_KEY_CONTEXT + pepper.encode()).digest()))


def seal(secret: str, *, pepper: str) -> str:
    return _fernet(pepper).encrypt(secret.encode()).decode()


def unseal(sealed: str, *, pepper: str) -> str | None:
    """The secret, or None when there is none or it was sealed under another SECRET_KEY."""
    if not sealed:
        return None
    try:
        return _fernet(pepper).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None
