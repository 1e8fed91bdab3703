"""The ``openai_batch`` run kind: each step is one line of a Batch API batch, one model call
through the engine under the runner's shared resource manager (the limits and rate limiters
of jobs).

A step maps the line's body (:mod:`app.services.batches.chat`), finds the alias serving its
``model`` (the endpoints file's ``models`` table, else the alias of that name) and runs a
one-node ``llm`` graph; the item's output is the line's output or error line. A line whose
model is unknown, whose body is invalid, or that sets a field the alias's provider refuses
(named in the error) fails alone, with a 4xx answer, before any call. Past the
batch's deadline a line ends ``batch_expired`` (one in flight is cut at the deadline). A call
stored before a restart is restored, never sent again. As the run ends (whoever ends it),
:meth:`OpenAIBatchKind.finish` builds its output and error files in the ending transaction,
so a batch is ``completed`` with its files without anyone reading it first.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job
from app.db.repositories import batches as batches_repo
from app.db.repositories.results import ItemRow
from app.engine import ExecutionSettings, Flow, ResourceConfig
from app.engine.execution.prepared import Execution
from app.engine.execution.program import Program
from app.engine.graph.model import Graph, InputSpec, LLMNode
from app.engine.resources.providers import refused_fields
from app.lifecycle import ItemStatus
from app.services.batches import ids, lines, outputs
from app.services.batches.chat import ChatCall, ChatCalls, Refused
from app.services.observability.tracing import engine_spans
from app.services.runner.calls import on_call
from app.services.runner.kinds import KindRun, RunDeps, Step, flow_of
from app.services.runner.node_rows import restored_records
from app.services.runner.sink import FailedNodeLog, NodeSink

OPENAI_BATCH = "openai_batch"
NODE = "call"
MAX_SHAPES = 256  # compiled line graphs a run keeps


class OpenAIBatchKind:
    """Lines of a Batch API batch (``jobs.kind = "openai_batch"``)."""

    name = OPENAI_BATCH

    async def open(self, job: Job, deps: RunDeps) -> KindRun:
        spec = job.spec or {}
        deadline = datetime.fromisoformat(spec["deadline"])
        return OpenAIBatchRun(job, deps, deadline, await flow_of(job, deps))

    async def finish(self, session: AsyncSession, job: Job) -> None:
        """The end-of-run hook: the batch's output and error files, made once."""
        found = await batches_repo.get_batch(session, job.tenant_id, job.id)
        if found is not None:
            await outputs.finalize(session, found[0], job)


def alias_for(config: ResourceConfig, model: str) -> str | None:
    """The alias serving ``model``: the ``models`` table's, else the alias of that name.

    >>> config = ResourceConfig.from_dict({"endpoints": {"fast": {"provider": "simulated",
    ...     "model": "sim"}}, "models": {"gpt-4o-mini": "fast"}})
    >>> alias_for(config, "gpt-4o-mini"), alias_for(config, "fast"), alias_for(config, "x")
    ('fast', 'fast', None)
    """
    alias = config.models.get(model, model)
    return alias if alias in config.endpoints else None


class OpenAIBatchRun:
    """One batch, started or resumed: each step answers one line."""

    def __init__(self, job: Job, deps: RunDeps, deadline: datetime, flow: Flow) -> None:
        self.job = job
        self.flow = flow  # shares the endpoints fairly with jobs, as a job's items do
        self.deps = deps
        self.deadline = deadline
        self.started: dict[str, Any] = {"lines": job.item_count}
        self._executions: dict[tuple[str, bytes], Execution] = {}  # per alias and call shape
        self._calls = ChatCalls()
        self._refusals = refused_fields(deps.resources.config)
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._cut: set[asyncio.Task[Any]] = set()  # the calls the deadline cancelled
        self._timer: asyncio.TimerHandle | None = None

    async def step(self, step: Step) -> ItemRow:
        custom_id, body = step.input["custom_id"], step.input["body"]
        line_id = ids.request_id(self.job.id, step.index)
        request_id = "req_" + line_id.removeprefix("batch_req_")
        if self._left() <= 0:
            return self._expired(step, line_id, custom_id)
        try:
            call = self._calls.call(body)
        except Refused as exc:
            error = lines.refused(line_id, custom_id, request_id, 400, "invalid_request", str(exc))
            return self._failed(step, error)
        alias = alias_for(self.deps.resources.config, call.model)
        if alias is None:
            message = f"the model {call.model!r} does not exist or is not served here"
            error = lines.refused(line_id, custom_id, request_id, 404, "model_not_found", message)
            return self._failed(step, error)
        refused = [name for name in call.fields if name in self._refusals.get(alias, ())]
        if refused:
            message = f"body.{refused[0]} is not supported by the model {call.model!r}"
            error = lines.refused(line_id, custom_id, request_id, 400, "unsupported_parameter",
                                  message)  # fmt: skip
            return self._failed(step, error)
        return await self._call(step, call, alias, (line_id, custom_id, request_id))

    async def _call(
        self, step: Step, call: ChatCall, alias: str, names: tuple[str, str, str]
    ) -> ItemRow:
        execution = self._execution(call, alias)
        restored = restored_records(step.stored) if step.stored else None
        on_call(step.begin)  # running once its model call has its slot
        task = self._watch()
        try:
            result = await execution.run(call.texts, str(step.index), restored)
        except asyncio.CancelledError:
            if task in self._cut and task.uncancel() == 0:  # the deadline's cancel alone
                return self._expired(step, names[0], names[1])
            raise
        finally:
            self._in_flight.discard(task)
        record = result.records[NODE]
        if not result.ok:
            message = f"{record.error_type}: {record.error}"
            error = lines.refused(*names, 500, record.error_type or "server_error", message)
            return self._failed(step, error)
        many, said = "n" in call.fields, "tools" in call.node
        line = lines.answered(names, record.output, record.usage, many=many, message=said)
        tokens_in, tokens_out, cost = result.usage_totals()
        ok, size = ItemStatus.SUCCEEDED.value, len(lines.encoded(line))
        return ItemRow(self.job.id, step.index, ok, line, None, tokens_in, tokens_out, cost,
                       output_bytes=size)  # fmt: skip

    def _left(self) -> float:
        return self.deadline.timestamp() - time.time()

    def _watch(self) -> asyncio.Task[Any]:
        """The step's task, cancelled at the deadline: one timer for the run, not one per
        call (as ``asyncio.timeout`` would be)."""
        task = asyncio.current_task()
        assert task is not None
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, self._left()), self._cut_all)
        self._in_flight.add(task)
        return task

    def _cut_all(self) -> None:
        for task in self._in_flight:
            self._cut.add(task)
            task.cancel()

    def _expired(self, step: Step, line_id: str, custom_id: str) -> ItemRow:
        return self._failed(step, lines.stopped(line_id, custom_id, lines.EXPIRED, EXPIRED_TEXT))

    def _failed(self, step: Step, line: dict[str, Any]) -> ItemRow:
        message = (line.get("error") or line["response"]["body"]["error"])["message"]
        failed, size = ItemStatus.FAILED.value, len(lines.encoded(line))
        return ItemRow(self.job.id, step.index, failed, line, message, 0, 0, 0.0,
                       output_bytes=size)  # fmt: skip

    def _execution(self, call: ChatCall, alias: str) -> Execution:
        key = (alias, call.shape)
        found = self._executions.get(key)
        return found if found is not None else self._prepare(key, call, alias)

    def _prepare(self, key: tuple[str, bytes], call: ChatCall, alias: str) -> Execution:
        if len(self._executions) >= MAX_SHAPES:  # the oldest goes; lines using it keep it
            del self._executions[next(iter(self._executions))]
        node = LLMNode.model_validate({"op": "llm", "id": NODE, "alias": alias, **call.node})
        graph = Graph(
            name="openai-batch-line", inputs=dict.fromkeys(call.texts, InputSpec()),
            nodes=[node], outputs={NODE: NODE},
        )  # fmt: skip
        settings = ExecutionSettings(
            resources=self.deps.resources,
            observers=(NodeSink(self.job.id, self.deps.writer), self.deps.metrics.nodes,
                       FailedNodeLog()),
            priority=self.job.priority,
            flow=self.flow,
            output_limits=self.deps.limits,
            spans=engine_spans(self.deps.tracing),
        )  # fmt: skip
        execution = self._executions[key] = Execution(Program(graph), settings)
        return execution


EXPIRED_TEXT = "the batch's completion window ended before this request ran"
