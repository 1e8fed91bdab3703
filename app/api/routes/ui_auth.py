"""The dashboard's entry points: ``/`` and ``/ui`` redirect to the jobs list; login with an
API key (keys mode; the form carries its own CSRF token, ``app.dashboard.login_tokens``),
logout."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.deps import RuntimeDep
from app.api.ui import (
    CsrfRefused,
    CsrfUserDep,
    PageRoute,
    client_of,
    page,
    set_session,
    ui_secret,
)
from app.dashboard.login_tokens import (
    LOGIN_COOKIE,
    LOGIN_PATH,
    LOGIN_TOKEN_S,
    login_ok,
    login_token,
    new_login_cookie,
)
from app.dashboard.sessions import COOKIE, CSRF_FIELD, seal
from app.services.errors import Unauthorized
from app.services.requests import ui_sessions

router = APIRouter(include_in_schema=False, route_class=PageRoute)
HOME = "/ui/jobs"


@router.get("/")
async def root() -> RedirectResponse:
    """The dashboard."""
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui")
async def ui_home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=307)


def _safe_next(target: str | None) -> str:
    # Only a path of this dashboard: never another site (an open redirect).
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return HOME


@router.get(LOGIN_PATH)
async def login_form(
    request: Request, next: Annotated[str | None, Query(max_length=500)] = None
) -> HTMLResponse:
    """The login form: one field, an API key (and the form's CSRF token)."""
    return _form(request, 200, _safe_next(next), None)


def _form(request: Request, status_code: int, target: str, error: str | None) -> HTMLResponse:
    """The form with a fresh login token, its cookie set on the answer."""
    secret = ui_secret(request)
    cookie = new_login_cookie(secret, time.time())
    token = login_token(secret, cookie)
    response = page(
        request, "login.html", None, status_code, target=target, error=error, login_token=token
    )
    response.set_cookie(
        LOGIN_COOKIE, cookie, max_age=LOGIN_TOKEN_S, path=LOGIN_PATH, httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post(LOGIN_PATH)
async def login(
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=500)] = None,
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=200)] = None,
) -> Response:
    """A live key starts a session (an HttpOnly, SameSite=Strict cookie); a wrong one shows
    the form again with 401. A form without the token of its login cookie is refused (403)."""
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not login_ok(ui_secret(request), cookie, csrf_token, time.time()):
        raise CsrfRefused
    target = _safe_next(next)
    try:
        session = await ui_sessions.login(runtime, api_key, client_of(request))
    except Unauthorized:
        return _form(request, 401, target, "That API key is unknown or revoked.")
    response = RedirectResponse(target, status_code=303)
    set_session(request, response, seal(ui_secret(request), session))
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH, httponly=True, samesite="strict")
    return response


@router.post("/ui/logout")
async def logout(user: CsrfUserDep) -> RedirectResponse:
    """End the session (the cookie is cleared)."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response
