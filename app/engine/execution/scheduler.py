"""Run one graph on one input: readiness counting, no polling (DESIGN §5).

A node is dispatched the moment its last dependency finishes. Inline ops (template, get,
parse_json, classify, coalesce) run synchronously; model calls and tools run as tasks, and
so does ``classify`` on long texts (in a thread: RE2 releases the GIL, the loop goes on).
A failed node cancels its descendants only; a false guard skips a node and everything that
needs it, except through ``coalesce``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Coroutine
from typing import Any

from app.engine.checkpoint import CheckpointSession
from app.engine.errors import (
    AwaitingInput,
    BranchError,
    ConfigError,
    EngineError,
    LLMCallError,
    NodeError,
    OutputLimitError,
    error_kind,
)
from app.engine.execution.calls import call_model
from app.engine.execution.context import RunContext
from app.engine.execution.limits import (
    OutputLimits,
    check_item,
    check_match_input,
    check_node,
    kept_inputs,
)
from app.engine.execution.plan import Plan, record_inputs
from app.engine.execution.step import Step
from app.engine.execution.values import lookup, render
from app.engine.graph.patterns import Classifier
from app.engine.graph.refs import Template, shown, to_text
from app.engine.records import NodeRecord, NodeStatus, RunResult

_PENDING, _SUCCEEDED, _FAILED, _SKIPPED, _CANCELLED = (
    NodeStatus.PENDING,
    NodeStatus.SUCCEEDED,
    NodeStatus.FAILED,
    NodeStatus.SKIPPED,
    NodeStatus.CANCELLED,
)
# Above this much work (text length times the patterns' program sizes) classify runs in a
# thread; below it, the worst case measured for a hostile pattern is about a millisecond.
INLINE_MATCH_WORK = 10_000


class GraphRun:
    """The state of one execution of a plan."""

    def __init__(
        self,
        plan: Plan,
        inputs: dict[str, Any],
        ctx: RunContext,
        label: str = "run",
        checkpoint: CheckpointSession | None = None,
        restored: dict[str, NodeRecord] | None = None,
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.label = label
        self.checkpoint = checkpoint
        self.inputs = inputs
        self.values: dict[str, Any] = {**plan.parameters, **inputs}
        self.status = [_PENDING] * len(plan.steps)
        self.records: list[NodeRecord | None] = [None] * len(plan.steps)
        self._waiting = [len(step.deps) for step in plan.steps]
        self._remaining = len(plan.steps)
        if restored is None and checkpoint is not None:
            restored = checkpoint.restored()
        self._restored = restored or {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready: deque[int] = deque()
        self._output_bytes = 0
        self._done: asyncio.Future[None] | None = None

    async def execute(self) -> RunResult:
        """Run every node to a final state and return the result (never raises for node errors)."""
        self._done = asyncio.get_running_loop().create_future()
        self._ready.extend(self.plan.roots)
        self._drain()
        if self._remaining:
            try:
                await self._done
            except asyncio.CancelledError:
                await self._cancel_tasks()
                raise
        return self._result()

    # -- dispatch ----------------------------------------------------------------------

    def _drain(self) -> None:
        ready = self._ready
        while ready:
            self._dispatch(self.plan.steps[ready.popleft()])

    def _dispatch(self, step: Step) -> None:
        try:
            blocked = self._blocked(step)
        except BranchError as exc:  # a guard that cannot decide fails its node
            self._fail(step, self._start_record(step), exc)
            return
        if blocked is not None:
            self._finish(step, NodeRecord(step.id, blocked))
        elif step.id in self._restored:
            restored = self._restored[step.id]
            self._succeed(step, restored.output, restored)
        else:
            getattr(self, step.run)(step)  # the method the op's compiler chose (see OPS)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _blocked(self, step: Step) -> NodeStatus | None:
        status = self.status
        if not step.coalesce:
            for dep in step.deps:
                if status[dep] is not _SUCCEEDED:
                    return _SKIPPED if status[dep] is _SKIPPED else _CANCELLED
        if step.guard is not None and step.guard_ref is not None:
            guard_dep = self.plan.index.get(step.guard_ref.name)
            if guard_dep is not None and status[guard_dep] is not _SUCCEEDED:
                return _SKIPPED if status[guard_dep] is _SKIPPED else _CANCELLED
            if not step.guard.admits(self._guard_value(step)):
                return _SKIPPED
        return None

    def _guard_value(self, step: Step) -> Any:
        assert step.guard_ref is not None
        try:
            return lookup(self.values, step.guard_ref)
        except NodeError:
            return None  # a guard on a missing field is simply not satisfied

    # -- handlers ----------------------------------------------------------------------

    def run_inline(self, step: Step) -> None:
        """template, get, parse_json: computed at once, on the loop."""
        record = self._start_record(step)
        try:
            assert step.inline is not None
            value = step.inline(self.values, self.ctx.limits)
        except NodeError as exc:
            self._fail(step, record, exc)
        else:
            self._succeed(step, value, record)

    def run_human(self, step: Step) -> None:
        """human: an answer given to the run comes as a restored node (see ``_dispatch``);
        without one the node fails with :class:`AwaitingInput`, its prompt rendered."""
        record = self._start_record(step)
        try:
            assert step.inline is not None
            prompt = step.inline(self.values, self.ctx.limits)
        except NodeError as exc:
            self._fail(step, record, exc)
        else:
            self._fail(step, record, AwaitingInput(str(prompt)))

    def run_classify(self, step: Step) -> None:
        """classify: on the loop when the match is cheap, in a thread otherwise."""
        assert step.classify is not None
        source, classifier = step.classify
        record = self._start_record(step)
        try:
            text = to_text(lookup(self.values, source))
            check_match_input(step.id, text, self.ctx.limits, classifier.weight)
        except NodeError as exc:
            self._fail(step, record, exc)
            return
        if len(text) * classifier.weight <= INLINE_MATCH_WORK:
            self._succeed(step, classifier(text), record)
        else:
            self._spawn(self._classify_in_thread(step, classifier, text, record))

    async def _classify_in_thread(
        self, step: Step, classifier: Classifier, text: str, record: NodeRecord
    ) -> None:
        try:
            label = await asyncio.to_thread(classifier, text)
        except Exception as exc:  # not expected from RE2; the node must still finish
            self._fail(step, record, exc)
        else:
            self._succeed(step, label, record)
        self._drain()

    def run_coalesce(self, step: Step) -> None:
        """coalesce: the first source not skipped; fails when every source was."""
        for ref in step.coalesce:
            index = self.plan.index.get(ref.name)
            state = _SUCCEEDED if index is None else self.status[index]
            if state is _SUCCEEDED:
                self._run_inline_value(step, ref)
                return
            if state is not _SKIPPED:
                self._finish(step, NodeRecord(step.id, _CANCELLED))
                return
        self._fail(step, self._start_record(step), BranchError(self._no_branch_taken(step)))

    def _no_branch_taken(self, step: Step) -> str:
        """Why a join has no value: the guards that skipped its sources, with their values."""
        guards: dict[str, str] = {}
        for ref in step.coalesce:
            source = self.plan.steps[self.plan.index[ref.name]]
            if source.guard_ref is not None and str(source.guard_ref) not in guards:
                guards[str(source.guard_ref)] = self._guard_shown(source)
        reasons = ", ".join(f"{ref!r} is {value}" for ref, value in guards.items())
        return "no branch was taken: every source was skipped" + (
            f" ({reasons})" if reasons else ""
        )

    def _guard_shown(self, step: Step) -> str:
        assert step.guard_ref is not None
        if step.guard_ref.name not in self.values:
            return NodeStatus.SKIPPED.value
        try:
            return shown(lookup(self.values, step.guard_ref))
        except NodeError:
            return "missing"

    def _run_inline_value(self, step: Step, ref: Any) -> None:
        record = self._start_record(step)
        try:
            value = lookup(self.values, ref)
        except NodeError as exc:
            self._fail(step, record, exc)
        else:
            self._succeed(step, value, record)

    def run_call(self, step: Step) -> None:
        """llm and tool: awaited in a task of their own."""
        self._spawn(self._run_async(step))

    async def _run_async(self, step: Step) -> None:
        record = self._start_record(step)
        spans = self.ctx.spans
        if spans is None:
            await self._run_call(step, record)
        else:  # the node's span is current in its task only until it ends: not in _drain's
            alias = step.llm.alias if step.llm else None
            with spans.node(self.label, record, step.node.op, alias):
                await self._run_call(step, record)
        self._drain()

    async def _run_call(self, step: Step, record: NodeRecord) -> None:
        try:
            value = await (self._call_llm(step, record) if step.llm else self._call_tool(step))
        except EngineError as exc:
            self._fail(step, record, exc)
        except Exception as exc:
            self._fail(step, record, exc)
        else:
            self._succeed(step, value, record)

    async def _call_llm(self, step: Step, record: NodeRecord) -> Any:
        assert step.llm is not None
        manager = self.ctx.manager
        if manager is None:
            raise ConfigError("no resources: bind(resources) or pass resources= to run an llm node")
        endpoint = manager.endpoint(step.llm.alias)
        request = step.llm.request(endpoint.config.model, self.values, self.ctx.limits, step.id)
        if self.ctx.record:
            record.inputs = {
                **record_inputs(step, self.values),
                "system": request.system,
                "prompt": request.prompt,
            }
            if request.messages:
                record.inputs["messages"] = list(request.messages)
        return await call_model(endpoint, step.llm, request, record, self.ctx, step.priority)

    async def _call_tool(self, step: Step) -> Any:
        assert step.tool is not None
        tool = self.ctx.tools.get(step.tool)
        if tool is None:
            raise NodeError(f"tool {step.tool!r} is not registered")
        limits = self.ctx.limits
        args = {
            name: _tool_arg(template, self.values, limits, f"argument {name!r} of node {step.id!r}")
            for name, template in step.tool_args
        }
        result = tool(**args)
        return await result if inspect.isawaitable(result) else result

    # -- bookkeeping -------------------------------------------------------------------

    def _start_record(self, step: Step) -> NodeRecord:
        self.status[step.index] = NodeStatus.RUNNING
        record = NodeRecord(step.id, NodeStatus.RUNNING, started_at=self.ctx.clock.now())
        if self.ctx.record and step.llm is None:
            record.inputs = record_inputs(step, self.values)
        return record

    def _succeed(self, step: Step, value: Any, record: NodeRecord) -> None:
        if not record.restored:
            try:
                self._count_output(step, value)
            except OutputLimitError as exc:
                self._fail(step, record, exc)
                return
        self.values[step.id] = value
        record.output = value
        if not record.restored and record.status is not _SUCCEEDED:
            record.status = _SUCCEEDED
            record.ended_at = self.ctx.clock.now()
            if self.checkpoint is not None:
                self.checkpoint.record(record)
        self._finish(step, record)

    def _count_output(self, step: Step, value: Any) -> None:
        limits = self.ctx.limits
        total = self._output_bytes + check_node(step.id, value, limits)
        check_item(step.id, total, limits)
        self._output_bytes = total

    def _fail(self, step: Step, record: NodeRecord, exc: BaseException) -> None:
        """A failed node keeps what it read even when the run does not record: that is what
        debugging it needs, and the values are at hand. Bounded by the node output limit."""
        if not self.ctx.record:
            record.inputs = kept_inputs(self._failed_inputs(step), self.ctx.limits)
        record.status = _FAILED
        record.error = str(exc) or type(exc).__name__
        record.error_type = error_kind(exc)
        record.ended_at = self.ctx.clock.now()
        if isinstance(exc, LLMCallError) and not record.attempts:
            record.attempts = 1
        self._finish(step, record)

    def _failed_inputs(self, step: Step) -> dict[str, Any]:
        """What a failed node read; an ``llm`` node's prompt rendered again (rendering is pure:
        the failed node's own value is not among the values)."""
        inputs = record_inputs(step, self.values)
        if step.llm is not None:
            limits, node = self.ctx.limits, step.id
            try:
                inputs["system"] = render(step.llm.system, self.values, limits, node)
                inputs["prompt"] = render(step.llm.prompt, self.values, limits, node)
            except EngineError:  # the prompt could not be rendered: that is why the node failed
                pass
        return inputs

    def _finish(self, step: Step, record: NodeRecord) -> None:
        self.status[step.index] = record.status
        self.records[step.index] = record
        for observer in self.ctx.observers:
            observer.node_finished(
                self.label, record, step.node.op, step.llm.alias if step.llm else None
            )
        waiting = self._waiting
        for user in step.users:
            waiting[user] -= 1
            if waiting[user] == 0:
                self._ready.append(user)
        self._remaining -= 1
        if self._remaining == 0 and self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for index, status in enumerate(self.status):
            if status not in (_SUCCEEDED, _FAILED, _SKIPPED):
                self.status[index] = _CANCELLED
                self.records[index] = NodeRecord(self.plan.steps[index].id, _CANCELLED)

    def _result(self) -> RunResult:
        records = {r.node: r for r in self.records if r is not None}
        outputs = {name: self._output(ref) for name, ref in self.plan.outputs.items()}
        return RunResult(outputs, records, self.plan.hash, self.inputs)

    def _output(self, ref: Any) -> Any:
        index = self.plan.index.get(ref.name)
        if index is not None and self.status[index] is not _SUCCEEDED:
            return None
        try:
            return lookup(self.values, ref)
        except NodeError:
            return None


def _tool_arg(
    template: Template, values: dict[str, Any], limits: OutputLimits, subject: str
) -> Any:
    single = template.single_ref  # a lone reference passes the value itself, not its text
    if single is not None:
        return lookup(values, single)
    return render(template, values, limits, subject)
