"""What every client command shares: ``--url``/``--api-key``, the connection, error reports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import httpx
import typer

from app.client import Client, ClientError
from app.settings import ClientSettings

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="the service's base URL (default: INF_URL, else http://127.0.0.1:8000)",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", help="API key (default: INF_API_KEY)", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the service's JSON answer")]


def client_settings(url: str | None, api_key: str | None) -> ClientSettings:
    """The command line's values over ``INF_URL``/``INF_API_KEY`` over the defaults."""
    given: dict[str, Any] = {"url": url, "api_key": api_key}
    return ClientSettings(**{name: value for name, value in given.items() if value is not None})


@contextlib.contextmanager
def connect(url: str | None, api_key: str | None) -> Iterator[Client]:
    """A client of the service; expected failures end the command with a message, exit 1."""
    settings = client_settings(url, api_key)
    try:
        with Client(settings.url, settings.api_key) as client:
            yield client
    except ClientError as exc:
        fail(problem_text(exc))
    except httpx.TransportError as exc:
        fail(transport_text(settings.url, exc))
    except BrokenPipeError:
        raise  # the reader went away (``| head``): click ends quietly
    except OSError as exc:
        fail(f"error: {exc.strerror or exc}: {exc.filename}" if exc.filename else f"error: {exc}")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def problem_text(exc: ClientError) -> str:
    """A problem-details error for people: status, title, detail, then each field error.

    >>> print(problem_text(ClientError(422, {"title": "Invalid input", "detail": "bad",
    ...     "errors": [{"line": 3, "field": "doc1", "message": "Field required"}]})))
    error: 422 Invalid input: bad
      - line 3: doc1: Field required
    """
    lines = [f"error: {exc}"]
    lines += [f"  - {issue_text(issue)}" for issue in exc.errors]
    return "\n".join(lines)


def issue_text(issue: dict[str, Any]) -> str:
    """``line 3: node compare: field: message``, with only the parts the issue has."""
    where = [f"{key} {issue[key]}" for key in ("line", "node") if issue.get(key) is not None]
    if issue.get("field"):
        where.append(str(issue["field"]))
    return ": ".join([*where, str(issue.get("message", ""))])


def transport_text(url: str, exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"error: cannot connect to {url}: is the service running? ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        return f"error: {url} did not answer in time"
    return f"error: the connection to {url} failed: {exc}"
