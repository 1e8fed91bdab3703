"""Webhook signatures: HMAC-SHA256 over the delivery id, a timestamp and the exact body bytes.

The service sends every webhook with the headers::

    Inf-Delivery: 0b7f3c1e-...
    Inf-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

where ``v1`` is the hex HMAC-SHA256, keyed with the tenant's webhook secret, of
``f"{delivery_id}.{t}.".encode() + body``. A receiver recomputes it over the delivery id and
the raw body it received, and rejects the call when it differs, when ``t`` is older than
``max_age_s`` (a replay) or further ahead than ``max_future_s``:

>>> header = signature_header("whsec_test", "d1", b'{"id": "j1"}', timestamp=1767225600)
>>> verify("whsec_test", "d1", b'{"id": "j1"}', header, now=1767225630)
True
>>> verify("whsec_test", "d2", b'{"id": "j1"}', header, now=1767225630)
False
>>> verify("whsec_test", "d1", b'{"id": "j1"}', header, now=1767225900)
False
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Inf-Signature"
DELIVERY_HEADER = "Inf-Delivery"
MAX_AGE_S = 60
MAX_FUTURE_S = 5


def sign(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<delivery_id>.<timestamp>." + body`` under ``secret``."""
    message = f"{delivery_id}.{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(
    secret: str, delivery_id: str, body: bytes, timestamp: int | None = None
) -> str:
    """The value of the ``Inf-Signature`` header for ``body`` (signed now unless told when)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={sign(secret, delivery_id, moment, body)}"


def verify(
    secret: str,
    delivery_id: str,
    body: bytes,
    header: str,
    *,
    max_age_s: float = MAX_AGE_S,
    max_future_s: float = MAX_FUTURE_S,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``delivery_id`` and ``body`` under ``secret``, signed at most
    ``max_age_s`` before ``now`` and at most ``max_future_s`` after it."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, signature = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or not signature:
        return False
    age = (time.time() if now is None else now) - int(stamp)
    if age > max_age_s or -age > max_future_s:
        return False
    return hmac.compare_digest(sign(secret, delivery_id, int(stamp), body), signature)
