"""The session cookie: a small JSON payload, encrypted and signed with Fernet.

Fernet (AES-128-CBC plus HMAC-SHA256, with a timestamp) gives confidentiality, integrity and
an absolute age limit in one primitive from ``cryptography``. The Fernet key is derived with
HKDF from the configured ``session_key``, so any long random string works as the secret.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callcenter.config import ConfigError

COOKIE_NAME = "cc_session"
MAX_AGE_SECONDS = 12 * 3600
MIN_KEY_LENGTH = 32


def derive_key(secret: str) -> bytes:
    """A Fernet key from the configured secret; ConfigError when it is missing or short."""
    if len(secret) < MIN_KEY_LENGTH:
        raise ConfigError(
            "session_key is missing or shorter than "
            f"{MIN_KEY_LENGTH} characters: set CALLCENTER_SESSION_KEY or put session_key in "
            "the file named by CALLCENTER_SECRETS_FILE (scripts/demo generates one)"
        )
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"callcenter session cookie"
    ).derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


class SessionCodec:
    """Turns a session dict into a cookie value and back."""

    def __init__(self, secret: str, max_age: int = MAX_AGE_SECONDS) -> None:
        self._fernet = Fernet(derive_key(secret))
        self.max_age = max_age

    def encode(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()

    def decode(self, value: str) -> dict[str, Any] | None:
        """The payload, or None when the cookie is forged, damaged or too old."""
        try:
            data = json.loads(self._fernet.decrypt(value.encode(), ttl=self.max_age))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save(self, request: web.Request, response: web.StreamResponse, data: dict) -> None:
        """Set the cookie: HttpOnly, SameSite=Lax, Secure when the request came over HTTPS."""
        response.set_cookie(
            COOKIE_NAME,
            self.encode(data),
            max_age=self.max_age,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=request.secure,
        )

    @staticmethod
    def clear(response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE_NAME, path="/")
