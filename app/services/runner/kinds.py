"""Run kinds: what the durable-run core needs to know about one kind of run, and their table.

The core (:class:`app.services.runner.core.DurableRun`) does what every durable run needs: it
is claimed with a lease and heartbeats, is taken over when its process dies and resumes from
what is stored, writes results in batches, emits events with increasing ids, stops on cancel,
and ends through :func:`~app.services.runner.ending.end_run`. A run kind says what is its own:
how a claimed run starts (or resumes) from its durable state, and what one step does. Its steps
are the job's items, run in index order within the runner's window; what a step stores (node
rows, through ``deps.writer``) comes back to it on resume as ``Step.stored``.

    class Echo:
        name = "echo"

        async def open(self, job: Job, deps: RunDeps) -> KindRun:
            return EchoRun(job.id, deps)  # its ``step(step)`` returns the item's ItemRow

    register(Echo())  # the dispatcher now claims jobs whose ``kind`` is "echo"

A run ends ``completed`` once every step ended (succeeded or failed), ``failed`` when ``open``
raises :class:`CannotRun` (or its runner kept dying), ``cancelled`` when the user cancelled it.

A kind with work of its own at the end (a Batch API batch builds its output files) also has
``finish(session, job)`` (:class:`FinishesRun`): ``end_run`` calls it in the transaction that
ends the run, whoever ends it, once no runner holds it any more. A run whose items may wait at
human nodes says so (:class:`WaitsForInput`); only such a run is watched for answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Job, NodeResult
from app.db.repositories import tenants as tenants_repo
from app.db.repositories.results import ItemRow
from app.engine import Flow, OutputLimits, ResourceManager
from app.services.ledger.options import LedgerOptions
from app.services.observability.metrics import ServiceMetrics
from app.services.observability.tracing import RunTracing
from app.services.programs import ProgramCache
from app.services.runner.window import FairWindow
from app.services.runner.writer import ResultWriter


@dataclass
class RunDeps:
    """What every run of a runner shares."""

    sessions: async_sessionmaker[AsyncSession]
    writer: ResultWriter
    resources: ResourceManager
    programs: ProgramCache
    window: FairWindow  # steps in flight in this process, over every run
    metrics: ServiceMetrics
    owner: str  # the runner's lease owner id: only the lease holder may end a run
    progress_s: float = 2.0
    wait_poll_s: float = 0.5  # how often a run with waiting items looks for their answers
    limits: OutputLimits | None = None
    tenant_weights: Mapping[str, float] = field(default_factory=dict)  # by tenant name
    ledger_cache: str = "off"  # the ledger mode where neither a run nor its endpoint says
    tracing: RunTracing | None = None  # OpenTelemetry spans, when the OTEL_* settings ask

    def ledger(self, job: Job) -> dict[str, Any]:
        """``ExecutionSettings`` keywords running ``job`` with its tenant's response ledger."""
        options = LedgerOptions(job.cache, job.replay)  # type: ignore[arg-type]
        return options.settings(self.sessions, job.tenant_id, self.ledger_cache)


async def flow_of(job: Job, deps: RunDeps) -> Flow:
    """The job's flow at its endpoints: its own fair share within its tenant's (weighted)."""
    weight = 1.0
    if deps.tenant_weights:
        async with deps.sessions() as session:
            name = await tenants_repo.tenant_name(session, job.tenant_id)
        weight = deps.tenant_weights.get(name or "", 1.0)
    return Flow(job.tenant_id, job.id, weight)


@dataclass(frozen=True, slots=True)
class Step:
    """One unfinished step of a run: its index, its stored input, what was stored for it.

    The kind calls ``begin()`` when the step's work really begins (for a batch item: its first
    model call got its slot); from then on it counts as ``running``, before as ``pending``.
    Calling it again does nothing; a step that never calls it counts as running as it ends.
    """

    index: int
    input: Any
    stored: list[NodeResult]
    begin: Callable[[], None]


class CannotRun(Exception):
    """Raised by ``RunKind.open``: the run cannot start, and fails with this message."""


class KindRun(Protocol):
    """One claimed run of a kind, started or resumed."""

    @property
    def started(self) -> dict[str, Any]:
        """The data of the run's ``job_started`` event."""
        ...

    async def step(self, step: Step) -> ItemRow:
        """Run one step to its end and return its item row (cancellation is the core's)."""
        ...


class RunKind(Protocol):
    """A kind of durable run (see the module docstring)."""

    @property
    def name(self) -> str:
        """What ``jobs.kind`` says for runs of this kind."""
        ...

    async def open(self, job: Job, deps: RunDeps) -> KindRun:
        """Start or resume the claimed run ``job``; raise :class:`CannotRun` to fail it."""
        ...


@runtime_checkable
class FinishesRun(Protocol):
    """A run kind with an end-of-run hook (see the module docstring)."""

    async def finish(self, session: AsyncSession, job: Job) -> None:
        """Do the kind's last work for the ended run ``job`` (its final row), in ``session``:
        the transaction that records the end, so both last or neither does."""
        ...


@runtime_checkable
class WaitsForInput(Protocol):
    """A run whose steps may end waiting for a person (a graph with human nodes): the core
    then keeps it until no item is open (see :mod:`app.services.runner.humans`)."""

    @property
    def can_wait(self) -> bool:
        """Whether any of its steps can wait."""
        ...


BATCH = "batch"  # the default kind: items of one graph (``batch.BatchKind``)
RUN_KINDS: dict[str, RunKind] = {}


def register(kind: RunKind) -> RunKind:
    """Add ``kind`` to the table the dispatcher consults (a kind of the same name is replaced)."""
    RUN_KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> RunKind | None:
    """The registered kind called ``name``, if any."""
    return RUN_KINDS.get(name)
