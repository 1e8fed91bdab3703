"""The login form's CSRF token: a signed double submit made before any session exists.

Without it, a page on another site could post its own API key to ``/ui/login`` and sign the
browser in as the attacker's tenant (login CSRF). ``GET /ui/login`` sets a short-lived cookie
(a random nonce and its expiry, signed with HMAC-SHA256 as the session cookie is) and puts the
cookie's form token, a signature of its value, in a hidden field; ``POST /ui/login`` goes on
only when the cookie is intact and unexpired and the field is its token. Another site can
neither read the cookie (HttpOnly) nor have it sent (SameSite=Strict), nor compute a token.

>>> cookie = login_cookie("k", "n1", expires=2_000_000_000)
>>> login_ok("k", cookie, login_token("k", cookie), now=1_900_000_000)
True
>>> login_ok("k", cookie, "forged", now=1_900_000_000)
False
>>> login_ok("other", cookie, login_token("other", cookie), now=1_900_000_000)
False
>>> login_ok("k", cookie, login_token("k", cookie), now=2_000_000_001)
False
"""

from __future__ import annotations

import hmac
import secrets

from app.signing import sign

LOGIN_COOKIE = "inf_ui_login"
LOGIN_PATH = "/ui/login"
LOGIN_TOKEN_S = 30 * 60  # how long a login form may stay open before it must be reloaded
_COOKIE = "ui-login"
_FORM = "ui-login-form"


def login_cookie(secret: str, nonce: str, expires: int) -> str:
    """The cookie value: ``nonce.expires.signature``."""
    return f"{nonce}.{expires}.{sign(secret, _COOKIE, expires, nonce.encode())}"


def new_login_cookie(secret: str, now: float) -> str:
    """A fresh cookie value, valid for :data:`LOGIN_TOKEN_S`."""
    return login_cookie(secret, secrets.token_urlsafe(16), int(now) + LOGIN_TOKEN_S)


def login_token(secret: str, cookie: str) -> str:
    """The form token that goes with the cookie value ``cookie``."""
    return sign(secret, _FORM, 0, cookie.encode())


def login_ok(secret: str, cookie: str | None, token: str | None, now: float) -> bool:
    """Whether ``cookie`` is one this service set, unexpired, and ``token`` is its token."""
    if not cookie or not token:
        return False
    nonce, _, rest = cookie.partition(".")
    stamp, _, signature = rest.partition(".")
    if not stamp.isdigit() or int(stamp) <= now:
        return False
    if not hmac.compare_digest(sign(secret, _COOKIE, int(stamp), nonce.encode()), signature):
        return False
    return hmac.compare_digest(login_token(secret, cookie), token)
