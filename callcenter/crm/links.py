"""Signed, time-limited links to call recordings, for a CRM or a webhook receiver to download
without a login: ``<public_url>/recordings/<id>?expires=<unix>&signature=<hex>``, HMAC-SHA256
with a key derived from the ``session_key`` secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from callcenter.models import utcnow

LIFETIME = timedelta(days=7)
"""Long enough for a CRM that fetches the file late or retries; short enough to lapse."""


class RecordingLinks:
    def __init__(
        self,
        public_url: str,
        secret: str,
        *,
        lifetime: timedelta = LIFETIME,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if not secret:
            raise ValueError("recording links need the session_key secret to be set")
        self.public_url = public_url.rstrip("/")
        self._key = hashlib.sha256(b"callcenter/recording\0" + secret.encode()).digest()
        self.lifetime = lifetime
        self.now = now

    def _signature(self, interaction_id: int, expires: int) -> str:
        message = f"{interaction_id}.{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, interaction_id: int) -> str:
        expires = int((self.now() + self.lifetime).timestamp())
        query = urlencode(
            {"expires": expires, "signature": self._signature(interaction_id, expires)}
        )
        return f"{self.public_url}/recordings/{interaction_id}?{query}"

    def valid(self, interaction_id: int, expires: str, signature: str) -> bool:
        """Signed for this recording and not yet expired."""
        if not expires.isdigit():
            return False
        expected = self._signature(interaction_id, int(expires))
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return False
        return int(expires) > self.now().timestamp()
