"""The dashboard's session cookie and CSRF tokens, signed with HMAC-SHA256 (``app.signing``).

A session names its tenant and the SHA-256 of the API key it logged in with (never the key),
so a revoked key ends its sessions; it expires ``max_age_s`` after login. The CSRF token of a
session is a signature of the cookie's value: a form that changes anything carries it, and a
page on another site can neither read it nor send the cookie (``SameSite=Strict``).

>>> sealed = seal("k", UiSession("t1", "ab", expires=2_000_000_000))
>>> unseal("k", sealed, now=1_900_000_000)
UiSession(tenant_id='t1', key_hash='ab', expires=2000000000)
>>> unseal("other", sealed, now=1_900_000_000) is None
True
>>> csrf_ok("k", sealed, csrf_token("k", sealed)), csrf_ok("k", sealed, "forged")
(True, False)
"""

from __future__ import annotations

import base64
import hmac
import json
from dataclasses import dataclass

from app.signing import sign

COOKIE = "inf_ui_session"
CSRF_FIELD = "csrf_token"
_SESSION = "ui-session"
_CSRF = "ui-csrf"


@dataclass(frozen=True, slots=True)
class UiSession:
    """Who a browser is: a tenant, the digest of its key (empty in open mode), an expiry."""

    tenant_id: str
    key_hash: str
    expires: int


def seal(secret: str, session: UiSession) -> str:
    """The cookie value: the session as base64 JSON and its signature."""
    payload = json.dumps([session.tenant_id, session.key_hash], separators=(",", ":"))
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return stamped(secret, _SESSION, body, session.expires)


def unseal(secret: str, value: str, now: float) -> UiSession | None:
    """The session a cookie holds; ``None`` if it is forged, malformed or expired."""
    found = opened(secret, _SESSION, value, now)
    if found is None:
        return None
    body, expires = found
    try:
        tenant_id, key_hash = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    return UiSession(str(tenant_id), str(key_hash), expires)


def stamped(secret: str, purpose: str, body: str, expires: int) -> str:
    """``body.expires.signature``: a value only this service can make, good until ``expires``.

    >>> opened("k", "p", stamped("k", "p", "b", 20), now=10), opened("k", "q", "b.20.x", now=10)
    (('b', 20), None)
    """
    return f"{body}.{expires}.{sign(secret, purpose, expires, body.encode())}"


def opened(secret: str, purpose: str, value: str, now: float) -> tuple[str, int] | None:
    """The body and expiry of a :func:`stamped` value; ``None`` if forged or expired."""
    body, _, rest = value.partition(".")
    stamp, _, signature = rest.partition(".")
    if not stamp.isdigit() or int(stamp) <= now:
        return None
    if not hmac.compare_digest(sign(secret, purpose, int(stamp), body.encode()), signature):
        return None
    return body, int(stamp)


def csrf_token(secret: str, cookie: str, purpose: str = _CSRF) -> str:
    """The CSRF token of the session whose cookie value is ``cookie``."""
    return sign(secret, purpose, 0, cookie.encode())


def csrf_ok(secret: str, cookie: str | None, token: str | None, purpose: str = _CSRF) -> bool:
    """Whether ``token`` is the CSRF token of ``cookie`` (both must be present)."""
    if not cookie or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, cookie, purpose), token)
