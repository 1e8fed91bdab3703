"""The dashboard's entry points: ``/`` and ``/ui`` redirect to the jobs list; login with an
API key (keys mode), logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.deps import RuntimeDep
from app.api.ui import CsrfUserDep, PageRoute, client_of, page, set_session, ui_secret
from app.dashboard.sessions import COOKIE, seal
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


@router.get("/ui/login")
async def login_form(
    request: Request, next: Annotated[str | None, Query(max_length=500)] = None
) -> HTMLResponse:
    """The login form: one field, an API key."""
    return page(request, "login.html", None, target=_safe_next(next), error=None)


@router.post("/ui/login")
async def login(
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    """A live key starts a session (an HttpOnly, SameSite=Strict cookie); a wrong one shows
    the form again with 401."""
    target = _safe_next(next)
    try:
        session = await ui_sessions.login(runtime, api_key, client_of(request))
    except Unauthorized:
        error = "That API key is unknown or revoked."
        return page(request, "login.html", None, 401, target=target, error=error)
    response = RedirectResponse(target, status_code=303)
    set_session(request, response, seal(ui_secret(request), session))
    return response


@router.post("/ui/logout")
async def logout(user: CsrfUserDep) -> RedirectResponse:
    """End the session (the cookie is cleared)."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response
