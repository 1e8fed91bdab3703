"""``ExecutionSettings``: how runs execute, settable per call, per module or per context.

Precedence, highest first: arguments of the call (``run(..., timeout_s=5)``), then the
module's ``bind(...)``, then the innermost ``with ExecutionSettings(...)`` block, then outer
blocks. A field left ``None`` defers to the next level, so an inner block that sets only
``timeout_s`` keeps the outer block's resources.

>>> with ExecutionSettings(max_retries=1):
...     with ExecutionSettings(timeout_s=5.0):
...         current_settings().max_retries
1
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.engine.execution.limits import OutputLimits
from app.engine.execution.observer import Observer
from app.engine.execution.spans import RunSpans
from app.engine.resources.fairness import Flow

if TYPE_CHECKING:
    from app.engine.checkpoint import CheckpointStore
    from app.engine.ledger.store import LedgerStore
    from app.engine.resources.config import ResourceConfig
    from app.engine.resources.manager import ResourceManager

ProgressCallback = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    """Settings of runs and batches; every field optional (``None`` = not set here).

    Args:
        resources: endpoint configuration or a resource manager.
        max_retries: retries for transient errors (default: the endpoint's).
        timeout_s: per-call timeout (default: the endpoint's).
        checkpoint: a store or a directory; finished nodes are saved and skipped on rerun.
        checkpoint_key: key of a single run in the store (batches use ``item-<index>``).
        profiler: a :class:`TraceProfiler` (any :class:`Observer`) receiving every node's span.
        record: return a :class:`ForwardRecord` instead of plain outputs.
        max_in_flight: batch items executing at once (memory is bounded by this).
        ordered: batch results in input order (``True``) or completion order.
        on_progress: ``callback(done, total)`` after each batch item (total ``None`` if unknown).
        priority: lower runs first when endpoints are contended.
        flow: whose calls these are; waiting calls share an endpoint fairly between flows.
        observers: extra :class:`Observer` hooks.
        spans: a :class:`RunSpans` tracing backend (spans per node and per call attempt).
        tools: functions callable from ``tool`` nodes, by name.
        output_limits: size limits on node and item outputs (default: :class:`OutputLimits`).
        ledger: a :class:`~app.engine.ledger.LedgerStore` or a directory: model calls are
            recorded and replayed by request (see docs/ledger.md).
        cache: ``"off"``, ``"read"`` or ``"read_write"`` (default: each endpoint's ``cache``,
            else ``cache_default``).
        cache_default: the mode where neither the run nor the endpoint says (``read_write``).
        replay: ``"strict"``: every call must be in the ledger; a node whose request is not
            fails, naming the field that differs from the nearest recorded request.
        sample: which sample of each request this run is (part of the ledger key).
    """

    resources: ResourceConfig | ResourceManager | None = None
    max_retries: int | None = None
    timeout_s: float | None = None
    checkpoint: CheckpointStore | str | Path | None = None
    checkpoint_key: str | None = None
    profiler: Observer | None = None
    record: bool | None = None
    max_in_flight: int | None = None
    ordered: bool | None = None
    on_progress: ProgressCallback | None = None
    priority: int | None = None
    flow: Flow | None = None
    observers: tuple[Observer, ...] | None = None
    spans: RunSpans | None = None
    tools: Mapping[str, Callable[..., Any]] | None = None
    output_limits: OutputLimits | None = None
    ledger: LedgerStore | str | Path | None = None
    cache: str | None = None
    cache_default: str | None = None
    replay: str | None = None
    sample: int | None = None

    def over(self, base: ExecutionSettings) -> ExecutionSettings:
        """These settings layered over ``base``: fields set here win."""
        changes = {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }
        return replace(base, **changes)

    def __enter__(self) -> ExecutionSettings:
        effective = self.over(current_settings())
        _tokens.set((*_tokens.get(), _context.set(effective)))
        return effective

    def __exit__(self, *exc: object) -> None:
        *rest, token = _tokens.get()
        _context.reset(token)
        _tokens.set(tuple(rest))

    async def __aenter__(self) -> ExecutionSettings:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


_DEFAULTS = ExecutionSettings()  # frozen, so one shared instance is safe as the default
_context: ContextVar[ExecutionSettings] = ContextVar("inf_engine_settings", default=_DEFAULTS)
_tokens: ContextVar[tuple[Token[ExecutionSettings], ...]] = ContextVar(
    "inf_engine_tokens", default=()
)


def current_settings() -> ExecutionSettings:
    """The settings of the innermost active ``with ExecutionSettings(...)`` block."""
    return _context.get()


def resolve(call: ExecutionSettings, binding: ExecutionSettings | None) -> ExecutionSettings:
    """Apply the precedence rule: call > bind > context."""
    effective = current_settings()
    if binding is not None:
        effective = binding.over(effective)
    return call.over(effective)
