"""The aiohttp application: provider endpoints, control API and the serve loop.

Models named after a simulated optimization role (``sim-task``, ``sim-critic``...) answer
as :mod:`app.llm.simulation` does in process; ``sim-critic:fail`` answers 500, and the
noise variants (``:throttled``, ``:errors``, ``:slow``) answer 429 or 500 on the attempts
their schedule says (the server counts each request's attempts) and add their latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any, NoReturn

from aiohttp import web

from app.llm.simulation import SimulatedOutage, noise
from app.llm.simulation import answer as simulation_answer

from .behaviour import Behaviour, BehaviourError, Rule, parse_behaviour
from .dialects import ANTHROPIC, OPENAI, Dialect
from .limits import RequestWindow, retry_after_headers
from .replies import ChatRequest, complete, default_reply
from .state import Fault, LogEntry, ServerState

__all__ = ["STATE_KEY", "FakeLLMServer", "create_app", "serve"]

STATE_KEY = web.AppKey("fake_llm_state", ServerState)
CLIENT_CLOSED = 499  # nginx's code for "client went away before the answer"
SHUTDOWN_TIMEOUT_S = 2.0
_JSON = "application/json"
_SERVER_ERROR = "The server had an error while processing your request."
_OVERLOADED = "The server is overloaded, please try again later."

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_monotonic = time.monotonic


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    body = _dumps(payload).encode()
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


class FakeLLMServer:
    """Request handlers over one ServerState."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.state = ServerState(behaviour)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """`POST /v1/chat/completions` (OpenAI)."""
        return await self._serve(request, OPENAI)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """`POST /v1/messages` (Anthropic)."""
        return await self._serve(request, ANTHROPIC)

    async def azure_chat(self, request: web.Request) -> web.StreamResponse:
        """`POST /openai/deployments/{deployment}/chat/completions?api-version=...` (Azure).

        The deployment stands for the model (bodies name none); ``api-version`` is required.
        """
        if not request.query.get("api-version"):
            message = "Missing required query parameter: api-version"
            return _json(404, OPENAI.error(404, message))
        return await self._serve(request, OPENAI, request.match_info["deployment"])

    async def _serve(
        self, request: web.Request, dialect: Dialect, deployment: str | None = None
    ) -> web.StreamResponse:
        state = self.state
        now = _monotonic()
        state.requests += 1
        limit = state.behaviour.max_in_flight
        if limit is not None and state.in_flight >= limit:
            return self._overloaded(request.path, dialect, now)
        entry = state.arrive(request.path, now)
        status = CLIENT_CLOSED  # kept if the handler is cancelled: the client went away
        try:
            response = await self._answer(request, dialect, entry, deployment)
            status = response.status
            return response
        except Exception:
            status = 500
            raise
        finally:
            state.depart(entry, status, _monotonic())

    def _overloaded(self, path: str, dialect: Dialect, now: float) -> web.Response:
        """Refused at once, never counted in flight (so in_flight never exceeds the limit)."""
        state, status = self.state, dialect.overload_status
        state.count_status(status)
        if state.behaviour.log:
            entry = LogEntry(now - state.started, path, state.in_flight)
            entry.status, entry.t_done = status, _monotonic() - state.started
            state.log.append(entry)
        return _json(status, dialect.error(status, _OVERLOADED))

    async def _answer(
        self,
        request: web.Request,
        dialect: Dialect,
        entry: LogEntry | None,
        deployment: str | None = None,
    ) -> web.Response:
        state = self.state
        try:
            body = json.loads(await request.read())
            if entry is not None and state.behaviour.capture:
                entry.capture(body, request.headers, request.query)
            if deployment is not None and isinstance(body, dict):
                body = {**body, "model": body.get("model", deployment)}
            req = dialect.parse(body)
        except ValueError as exc:
            return _json(400, dialect.error(400, str(exc)))
        if entry is not None:
            entry.describe(req)
        window = state.window
        if window is not None and not window.admit(_monotonic()):
            return _json(429, dialect.rate_limited(), self._rejection_headers(window))
        rule = state.take_rule(req.match_text) if state.rules else None
        delay = state.delay_s(rule)
        if rule is None:
            delay += noise.latency_s(req.model, req.system, req.prompt)
        fault = state.draw_fault() if rule is None else None
        if delay > 0.0:
            await asyncio.sleep(delay)
        if _hangs(rule, fault):
            await self._hang(request)
        response = self._outcome(dialect, req, rule, fault, entry)
        if window is not None and state.behaviour.rate_headers == "full":
            response.headers.update(window.headers(_monotonic()))
        return response

    def _rejection_headers(self, window: RequestWindow) -> dict[str, str] | None:
        """A capped request's headers, as much as ``rate_headers`` says the cap tells."""
        told = self.state.behaviour.rate_headers
        if told == "none":
            return None
        headers = window.rejection_headers(_monotonic())
        if told == "retry_after":
            return {k: v for k, v in headers.items() if k.startswith("retry-after")}
        return headers

    def _outcome(
        self,
        dialect: Dialect,
        req: ChatRequest,
        rule: Rule | None,
        fault: str | None,
        entry: LogEntry | None,
    ) -> web.Response:
        if rule is not None:
            if rule.malformed:
                return self._malformed(dialect, req)
            if rule.status is not None:
                return _scripted_error(dialect, rule)
            return self._success(dialect, req, rule.reply, entry)
        if fault == Fault.ERROR:
            return _json(500, dialect.error(500, _SERVER_ERROR))
        if fault == Fault.MALFORMED:
            return self._malformed(dialect, req)
        scheduled = self.state.scheduled_fault(req)
        if scheduled is not None:
            return _scheduled_error(dialect, scheduled)
        try:
            simulated = simulation_answer(req.model, req.system, req.prompt)
        except SimulatedOutage as exc:
            return _json(500, dialect.error(500, str(exc)))
        return self._success(dialect, req, simulated, entry)

    def _success(
        self, dialect: Dialect, req: ChatRequest, text: str | None, entry: LogEntry | None
    ) -> web.Response:
        if text is None:
            text = default_reply(req)
            if self.state.behaviour.unique_replies and req.response_format is None:
                text = f"{text} #{self.state.requests}"
        comp = complete(text, req)
        if entry is not None:
            entry.tokens = req.prompt_tokens + comp.tokens
        body = dialect.success(req, comp, self.state.new_id(), int(time.time()))
        cached = min(self.state.behaviour.cached_tokens, req.prompt_tokens)
        if cached:
            dialect.cached(body, cached)
        return _json(200, body)

    def _malformed(self, dialect: Dialect, req: ChatRequest) -> web.Response:
        invalid = self.state.next_malformed_is_invalid_json()
        body = dialect.malformed(req, self.state.new_id(), invalid)
        return web.Response(status=200, body=body, content_type=_JSON)

    async def _hang(self, request: web.Request) -> NoReturn:
        """Never answer; ends when the client disconnects or the server stops."""
        transport = request.transport
        if transport is not None:
            self.state.hanging.add(transport)
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            if transport is not None:
                self.state.hanging.discard(transport)
        raise AssertionError("unreachable: the future above never completes")

    async def release_hangs(self, _app: web.Application) -> None:
        """On shutdown, drop the connections of hanging requests so shutdown is quick."""
        for transport in list(self.state.hanging):
            transport.close()


def _hangs(rule: Rule | None, fault: str | None) -> bool:
    return rule.hang if rule is not None else fault == Fault.TIMEOUT


def _scripted_error(dialect: Dialect, rule: Rule) -> web.Response:
    status = rule.status or 500
    if status == 429 and rule.reply is None:
        payload = dialect.rate_limited()
    else:
        payload = dialect.error(status, rule.reply or f"Scripted error {status}")
    headers = None
    if status == 429 or rule.retry_after_s is not None:
        headers = retry_after_headers(1.0 if rule.retry_after_s is None else rule.retry_after_s)
    return _json(status, payload, headers)


def _scheduled_error(dialect: Dialect, status: int) -> web.Response:
    if status == 429:
        return _json(429, dialect.rate_limited(), retry_after_headers(noise.RETRY_AFTER_S))
    return _json(status, dialect.error(status, _SERVER_ERROR))


class ControlAPI:
    """`/_control/*`, `/_stats`, `/_log` and `/healthz`."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def set_config(self, request: web.Request) -> web.Response:
        """Replace the behaviour wholesale; unspecified fields take their defaults."""
        try:
            behaviour = parse_behaviour(await request.json())
        except (ValueError, BehaviourError) as exc:
            return _json(400, {"error": str(exc)})
        self.state.configure(behaviour)
        return _json(200, behaviour.model_dump())

    async def get_config(self, _request: web.Request) -> web.Response:
        """The current behaviour."""
        return _json(200, self.state.behaviour.model_dump())

    async def reset(self, _request: web.Request) -> web.Response:
        """Clear stats, log, rule budgets and the rate window; keep the behaviour."""
        self.state.reset()
        return _json(200, {"ok": True})

    async def stats(self, request: web.Request) -> web.Response:
        """Request counters; with ``?window_s=60`` (and ``model_suffix``) also ``window``,
        the busiest window and peak in flight of the logged requests."""
        stats = self.state.stats()
        if "window_s" in request.query:
            try:
                window_s = float(request.query["window_s"])
            except ValueError:
                return _json(400, {"error": "window_s must be a number"})
            if not window_s > 0:
                return _json(400, {"error": "window_s must be positive"})
            suffix = request.query.get("model_suffix", "")
            stats["window"] = self.state.busiest(window_s, suffix)
        return _json(200, stats)

    async def log(self, _request: web.Request) -> web.Response:
        """The request log in arrival order."""
        return _json(200, [entry.as_dict() for entry in self.state.log])

    async def healthz(self, _request: web.Request) -> web.Response:
        """Liveness probe."""
        return _json(200, {"status": "ok"})


def create_app(behaviour: Behaviour | None = None) -> web.Application:
    """Build the application; `app[STATE_KEY]` exposes the live state."""
    server = FakeLLMServer(behaviour or Behaviour())
    control = ControlAPI(server.state)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = server.state
    app.add_routes(
        [
            web.post("/v1/chat/completions", server.chat_completions),
            web.post("/v1/messages", server.messages),
            web.post("/openai/deployments/{deployment}/chat/completions", server.azure_chat),
            web.post("/_control/config", control.set_config),
            web.get("/_control/config", control.get_config),
            web.post("/_control/reset", control.reset),
            web.get("/_stats", control.stats),
            web.get("/_log", control.log),
            web.get("/healthz", control.healthz),
        ]
    )
    app.on_shutdown.append(server.release_hangs)
    return app


async def serve(
    behaviour: Behaviour, host: str, port: int, on_ready: Callable[[str], None]
) -> None:
    """Serve until SIGTERM or SIGINT; `on_ready` receives the root URL once listening."""
    runner = web.AppRunner(
        create_app(behaviour),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=4096)
        await site.start()
        on_ready(_root_url(runner.addresses[0]))
        await _wait_for_signal()
    finally:
        await runner.cleanup()


async def _wait_for_signal() -> None:
    """Return on the first SIGTERM/SIGINT; a second one during shutdown exits at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, os._exit, 1)


def _root_url(address: Any) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
