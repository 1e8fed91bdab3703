"""The dashboard's HTTP plumbing: templates, who the browser is (session cookie, open mode),
CSRF checks, and the route class that answers a page's errors with HTML pages."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from app.api.deps import RuntimeDep
from app.dashboard import assets
from app.dashboard.sessions import COOKIE, CSRF_FIELD, csrf_ok, csrf_token, seal, unseal
from app.lifecycle import TERMINAL_JOB_STATUSES
from app.services.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ServiceError,
    TooManyRequests,
)
from app.services.requests import ui_sessions

templates = Jinja2Templates(directory=assets.TEMPLATES_DIR)
templates.env.globals["assets"] = assets
templates.env.globals["csrf_field"] = CSRF_FIELD
templates.env.globals["terminal"] = frozenset(s.value for s in TERMINAL_JOB_STATUSES)


class LoginRequired(Exception):
    """The page needs a login (keys mode, no live session)."""


class CsrfRefused(Exception):
    """A changing request came without its session's CSRF token."""


@dataclass(frozen=True, slots=True)
class UiUser:
    """The browser's tenant, its session cookie's value and CSRF token; ``new`` when the
    cookie is minted by this request (open mode) and must be set on the answer."""

    tenant_id: str
    cookie: str
    csrf: str
    new: bool = False
    signed_in: bool = False


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def ui_secret(request: Request) -> str:
    secret: str = request.app.state.ui_secret
    return secret


async def ui_user(request: Request, runtime: RuntimeDep) -> UiUser:
    """The logged-in (or, in open mode, anonymous) browser; ``LoginRequired`` otherwise."""
    secret = ui_secret(request)
    value = request.cookies.get(COOKIE, "")
    found = unseal(secret, value, time.time()) if value else None
    if found is not None and await ui_sessions.still_valid(runtime, found):
        signed_in = bool(found.key_hash)
        return UiUser(found.tenant_id, value, csrf_token(secret, value), signed_in=signed_in)
    if ui_sessions.is_open(runtime):
        minted = seal(secret, await ui_sessions.open_session(runtime, client_of(request)))
        tenant_id = (await ui_sessions.open_session(runtime, "")).tenant_id
        return UiUser(tenant_id, minted, csrf_token(secret, minted), True)
    raise LoginRequired


UiUserDep = Annotated[UiUser, Depends(ui_user)]


async def check_csrf(request: Request, user: UiUserDep) -> UiUser:
    """The user of a changing request whose form carries the CSRF token of the cookie it was
    sent with; ``CsrfRefused`` otherwise."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if user.new or not csrf_ok(ui_secret(request), user.cookie, str(token or "")):
        raise CsrfRefused
    return user


CsrfUserDep = Annotated[UiUser, Depends(check_csrf)]


def page(
    request: Request, name: str, user: UiUser | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a template (with the user's CSRF token) and keep the user's cookie."""
    context = {"user": user, "csrf": user.csrf if user else "", **context}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if user is not None and user.new:
        set_session(request, response, user.cookie)
    return response


def fragment(name: str, **context: Any) -> str:
    """A template rendered to a string (for an event stream)."""
    return templates.get_template(name).render(**context)


def set_session(request: Request, response: Response, value: str) -> None:
    settings = request.app.state.runtime.settings
    response.set_cookie(
        COOKIE, value, max_age=settings.ui_session_s, path="/ui", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip


def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/ui/login?next={target}", status_code=303)
    if isinstance(exc, CsrfRefused):
        detail = "This form is out of date or came from another site. Reload the page and retry."
        return page(request, "error.html", None, 403, title="Refused", detail=detail)
    assert isinstance(exc, ServiceError)
    status_code, title = _status_of(exc)
    return page(request, "error.html", None, status_code, title=title, detail=str(exc))


def _status_of(exc: ServiceError) -> tuple[int, str]:
    if isinstance(exc, NotFound):
        return 404, "Not found"
    if isinstance(exc, InvalidInput):
        return 400, "Bad request"
    if isinstance(exc, TooManyRequests):
        return 429, "Too many requests"
    return 409, "Refused"


# Every dashboard answer: its own origin's scripts, styles, images and connections only (no
# inline script or style), never framed, types as declared.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class PageRoute(APIRoute):
    """A dashboard route: a missing login is a redirect to the login form, and a service
    error (another tenant's id, a bad filter, a retry of a job with no failed items) an HTML
    page with its status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except (
                LoginRequired,
                CsrfRefused,
                NotFound,
                InvalidInput,
                Conflict,
                TooManyRequests,
            ) as exc:
                response = _error_page(request, exc)
            response.headers.update(SECURITY_HEADERS)
            return response

        return answer
