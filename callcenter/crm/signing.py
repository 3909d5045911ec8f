"""Signatures of outgoing webhooks, in the manner of Stripe's.

Each POST carries::

    X-Callcenter-Timestamp: 1764291600            (Unix seconds when this attempt was sent)
    X-Callcenter-Signature: v1=5257a869e7ec...    (hex HMAC-SHA256)

where the HMAC's key is the subscription's secret (UTF-8) and its message is the timestamp, a
dot and the raw request body: ``f"{timestamp}.".encode() + body``. A receiver recomputes it over
the body exactly as received (before any JSON parsing), compares in constant time and refuses
timestamps more than five minutes from its clock, which stops replays of a captured request.
Every retry is signed afresh with a new timestamp; the event's ``id`` stays the same, so a
receiver can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

TIMESTAMP_HEADER = "X-Callcenter-Timestamp"
SIGNATURE_HEADER = "X-Callcenter-Signature"
TOLERANCE_SECONDS = 300
SCHEME = "v1"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={signature(secret, timestamp, body)}",
    }


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    header: str,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: True only for a fresh timestamp and a matching v1 signature."""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    expected = signature(secret, int(timestamp), body)
    offered = [part[len(SCHEME) + 1 :] for part in header.split(",") if part.startswith("v1=")]
    return any(hmac.compare_digest(expected, value.strip()) for value in offered)
