"""``POST /v1/runs``: one input through a stored graph, synchronously, nothing persisted."""

from __future__ import annotations

from typing import Any

from app.engine import ExecutionSettings, InputError
from app.engine.execution.inputs import check_inputs
from app.engine.execution.prepared import Execution
from app.lifecycle import RunStatus
from app.services.errors import InvalidInput, Issue
from app.services.ledger.options import NO_OPTIONS, LedgerOptions
from app.services.limits import output_limits
from app.services.observability.tracing import engine_spans
from app.services.requests import graphs
from app.services.requests.views import node_view
from app.services.runtime import Runtime


async def run_once(
    runtime: Runtime,
    tenant_id: str,
    graph_ref: str,
    version: int | None,
    inputs: dict[str, Any],
    ledger: LedgerOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """Run the graph on ``inputs``; the answer has outputs, failures and every node's record.

    The graph is read in a session of its own that ends before the run starts: a run takes as
    long as its LLM calls, and must not hold a pooled connection (or a transaction) meanwhile."""
    async with runtime.reads() as session:
        stored = await graphs.get(session, tenant_id, graph_ref, version)
    program = runtime.programs.get(stored.version.id, stored.version.definition)
    observers = (runtime.metrics.nodes,)
    settings = ExecutionSettings(
        resources=runtime.resources,
        record=True,
        observers=observers,
        output_limits=output_limits(runtime.settings),
        **ledger.settings(runtime.sessions, tenant_id, runtime.settings.ledger_cache),
        spans=engine_spans(runtime.tracing),
    )
    execution = Execution(program, settings)
    try:
        checked = check_inputs(execution.plan.graph.inputs, inputs)
    except InputError as exc:
        raise InvalidInput(str(exc), [Issue("inputs", str(exc))]) from None
    result = await execution.run(checked, "run")
    tokens_in, tokens_out, cost = result.usage_totals()
    return {
        "graph_id": stored.graph.id,
        "version": stored.version.version,
        "status": RunStatus.SUCCEEDED if result.ok else RunStatus.FAILED,
        "outputs": result.outputs,
        "failed_nodes": result.failed,
        "nodes": {node: node_view(record) for node, record in result.records.items()},
        "usage": {
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cost": cost,
            "calls_saved": result.calls_saved,
        },
    }
