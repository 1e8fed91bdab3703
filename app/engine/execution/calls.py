"""One model call with the endpoint's limits, a timeout, and bounded retries (DESIGN §5).

Transient failures (5xx, timeouts, dropped connections) back off exponentially with full
jitter; 429s wait as the endpoint's gate says (Retry-After, lowered rate) and have their
own, larger retry budget; anything else fails the node at once.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from app.engine.errors import (
    LLMCallError,
    MalformedResponseError,
    RateLimitedError,
    TransientLLMError,
    error_kind,
)
from app.engine.execution.context import RunContext
from app.engine.execution.deadlines import DeadlineWatch, deadline_watch
from app.engine.ledger.policy import CacheMode, LedgerCall
from app.engine.llm import LLMRequest, LLMResponse
from app.engine.records import LLMUsage, NodeRecord
from app.engine.resources.fairness import Flow

if TYPE_CHECKING:
    from app.engine.execution.step import LLMStep
    from app.engine.resources.gate import Permit
    from app.engine.resources.manager import Endpoint

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


def backoff_delay(
    failures: int, rng_value: float, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S
) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**(failures-1))].

    >>> backoff_delay(3, 1.0)
    2.0
    """
    return rng_value * min(cap, base * 2.0 ** (failures - 1))


def estimate_tokens(request: LLMRequest) -> int:
    """Tokens a call may use, reserved against the endpoint's tokens-per-minute budget."""
    chars = len(request.system) + len(request.prompt) + sum(map(_chars, request.messages))
    return chars // 4 + (request.max_tokens or 256) * (request.n or 1)


def _chars(message: dict[str, Any]) -> int:
    content = message.get("content")
    if isinstance(content, str):
        return len(content)
    return sum(len(part.get("text", "")) for part in content or ())


async def call_model(
    endpoint: Endpoint,
    step: LLMStep,
    request: LLMRequest,
    record: NodeRecord,
    ctx: RunContext,
    priority: int,
) -> Any:
    """Call the endpoint until it answers or retries run out; fill ``record``; return the output.

    With a ledger, a recorded answer is served instead (no slot, no budget, no call), and a
    new answer is recorded once the node could decode it."""
    ledger = _ledger_call(endpoint, step, request, record, ctx)
    if ledger is not None:
        replayed = await ledger.lookup()
        endpoint.metrics.ledger(hit=replayed is not None)
        if replayed is not None:
            record.replayed = True
            record.usage = _replayed_usage(endpoint, replayed)
            return _decode(replayed, step)
    value, response = await _called(endpoint, step, request, record, ctx, priority)
    if ledger is not None:
        ledger.keep(response)
    return value


def _ledger_call(
    endpoint: Endpoint, step: LLMStep, request: LLMRequest, record: NodeRecord, ctx: RunContext
) -> LedgerCall | None:
    ledger = ctx.ledger
    if ledger is None:
        return None
    mode = ledger.mode(endpoint.config.cache)
    if mode is CacheMode.OFF:
        return None
    return ledger.call(request, record.node, step.twin, mode)


def _replayed_usage(endpoint: Endpoint, response: LLMResponse) -> LLMUsage:
    model = response.model or endpoint.config.model
    return LLMUsage(endpoint.alias, model, 0, 0, 0.0, response.finish_reason, 0.0)


async def _called(
    endpoint: Endpoint,
    step: LLMStep,
    request: LLMRequest,
    record: NodeRecord,
    ctx: RunContext,
    priority: int,
) -> tuple[Any, LLMResponse]:
    config = endpoint.config
    max_retries = _first(step.max_retries, ctx.max_retries, config.max_retries)
    timeout_s = _first(step.timeout_s, ctx.timeout_s, config.timeout_s)
    watch = deadline_watch()
    failures = limited = 0
    while True:
        record.attempts += 1
        order = (priority + ctx.priority, ctx.flow)
        try:
            if ctx.spans is None:
                response, usage = await _attempt(endpoint, request, timeout_s, order, watch)
            else:
                with ctx.spans.attempt(record.node, endpoint.alias, request, record.attempts) as s:
                    response, usage = await _attempt(endpoint, request, timeout_s, order, watch)
                    s.answered(usage)
            record.usage = usage
            return _decode(response, step), response
        except RateLimitedError:
            limited += 1
            if limited > config.max_rate_limit_retries:
                raise
            _note_retry(endpoint, record, "rate_limited")
        except LLMCallError as exc:
            failures += 1
            if not exc.transient or failures > max_retries:
                raise
            _note_retry(endpoint, record, error_kind(exc))
            await asyncio.sleep(backoff_delay(failures, ctx.rng.random()))


async def _attempt(
    endpoint: Endpoint,
    request: LLMRequest,
    timeout_s: float,
    order: tuple[int, Flow],
    watch: DeadlineWatch,
) -> tuple[LLMResponse, LLMUsage]:
    queued_at = endpoint.clock.now()
    permit = await endpoint.acquire(estimate_tokens(request), *order)
    if permit.shared is None:
        return await _call(endpoint, permit, request, timeout_s, watch, queued_at)
    try:
        return await _call(endpoint, permit, request, timeout_s, watch, queued_at)
    finally:
        rest = endpoint.leave_shared_now(permit)
        if rest is not None:
            await asyncio.shield(rest)


async def _call(
    endpoint: Endpoint,
    permit: Permit,
    request: LLMRequest,
    timeout_s: float,
    watch: DeadlineWatch,
    queued_at: float,
) -> tuple[LLMResponse, LLMUsage]:
    task = asyncio.current_task()
    assert task is not None
    deadline = watch.add(task, timeout_s)
    try:
        response = await endpoint.client.complete(request)
    except asyncio.CancelledError:
        if not deadline.expired or task.uncancel() > 0:
            endpoint.release(permit)
            raise
        error: LLMCallError = TransientLLMError(f"no answer within {timeout_s:g}s")
        endpoint.failed(permit, error)
        raise error from None
    except LLMCallError as exc:
        endpoint.failed(permit, exc)
        raise
    except BaseException:
        endpoint.release(permit)
        raise
    finally:
        watch.discard(deadline)
    usage = endpoint.succeeded(permit, response)
    usage.queued_s = permit.started_at - queued_at
    return response, usage


def _decode(response: LLMResponse, step: LLMStep) -> Any:
    """The node's output: one choice's value, or the list of them when ``n`` > 1 was asked."""
    if step.choices > 1 and response.choices:
        return [_choice_value(c.text, c.tool_calls, step) for c in response.choices]
    return _choice_value(response.text, response.tool_calls, step)


def _choice_value(text: str, tool_calls: tuple[dict[str, Any], ...], step: LLMStep) -> Any:
    if step.wants_message:
        return {"content": text, "tool_calls": list(tool_calls)}
    if not step.wants_json:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedResponseError(
            f"asked for JSON, got invalid JSON ({exc}): {text[:200]!r}"
        ) from None


def _note_retry(endpoint: Endpoint, record: NodeRecord, reason: str) -> None:
    record.retries.append(reason)
    endpoint.metrics.retries[reason] += 1


def _first(step_value: Any, run_value: Any, endpoint_value: Any) -> Any:
    if step_value is not None:
        return step_value
    return run_value if run_value is not None else endpoint_value
