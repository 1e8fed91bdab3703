"""Webhook signatures: HMAC-SHA256 over a timestamp and the exact body bytes.

The service sends every webhook with the header::

    Inf-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

where ``v1`` is the hex HMAC-SHA256, keyed with the tenant's webhook secret, of
``f"{t}.".encode() + body``. A receiver recomputes it over the raw body it received and
rejects the call when it differs or when ``t`` is too old (a replay):

>>> header = signature_header("whsec_test", b'{"id": "j1"}', timestamp=1767225600)
>>> verify("whsec_test", b'{"id": "j1"}', header, now=1767225660)
True
>>> verify("whsec_test", b'{"id": "j2"}', header, now=1767225660)
False
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Inf-Signature"
TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of the ``Inf-Signature`` header for ``body`` (signed now unless told when)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={sign(secret, moment, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    tolerance_s: int = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` within ``tolerance_s`` of ``now``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, signature = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or not signature:
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(stamp), body), signature)
