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

import secrets

from app.dashboard.sessions import csrf_ok, csrf_token, opened, stamped

LOGIN_COOKIE = "inf_ui_login"
LOGIN_PATH = "/ui/login"
LOGIN_TOKEN_S = 30 * 60  # how long a login form may stay open before it must be reloaded
_COOKIE = "ui-login"
_FORM = "ui-login-form"


def login_cookie(secret: str, nonce: str, expires: int) -> str:
    """The cookie value: ``nonce.expires.signature``."""
    return stamped(secret, _COOKIE, nonce, expires)


def new_login_cookie(secret: str, now: float) -> str:
    """A fresh cookie value, valid for :data:`LOGIN_TOKEN_S`."""
    return login_cookie(secret, secrets.token_urlsafe(16), int(now) + LOGIN_TOKEN_S)


def login_token(secret: str, cookie: str) -> str:
    """The form token that goes with the cookie value ``cookie``."""
    return csrf_token(secret, cookie, _FORM)


def login_ok(secret: str, cookie: str | None, token: str | None, now: float) -> bool:
    """Whether ``cookie`` is one this service set, unexpired, and ``token`` is its token."""
    if not cookie or opened(secret, _COOKIE, cookie, now) is None:
        return False
    return csrf_ok(secret, cookie, token, _FORM)
