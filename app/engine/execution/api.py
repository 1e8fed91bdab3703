"""The library's entry points: ``run``, ``run_sync``, ``stream``, ``run_batch``, ``resume``.

>>> from app.engine import LLMInference, ResourceConfig, run_sync
>>> cfg = ResourceConfig.from_dict({"endpoints": {"fast": {"provider": "simulated", "model": "m"}}})
>>> run_sync(LLMInference("fast"), "hello", resources=cfg).startswith("[simulated")
True
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from dataclasses import fields
from typing import Any

from app.engine.dispatch import Runtime, register_runtime
from app.engine.errors import InputError
from app.engine.execution.batch import BatchRunner
from app.engine.execution.inputs import bind_arguments, check_inputs
from app.engine.execution.pending import Pending, answered, pending_of
from app.engine.execution.prepared import Execution
from app.engine.execution.program import program_for
from app.engine.execution.settings import ExecutionSettings, resolve
from app.engine.graph.model import Graph, HumanNode
from app.engine.module import InferenceModule
from app.engine.records import BatchResult, RunResult
from app.engine.resources.manager import close_shared_managers

Target = InferenceModule | Graph
_SETTING_NAMES = frozenset(f.name for f in fields(ExecutionSettings))


async def run(target: Target, *args: Any, **settings: Any) -> Any:
    """Run a module (traced on first use) or a graph once; return its outputs.

    Inputs go by position or by keyword, as to ``forward``: ``run(m, q, context=c)``; a
    graph also takes one dict: ``run(graph, {"doc": "..."})``. Keywords that are
    :class:`ExecutionSettings` fields (``resources``, ``checkpoint``, ``record``...) are
    settings, so an input with such a name is passed by position.
    Raises :class:`ExecutionError` naming every failed node; with ``record=True`` returns
    a :class:`ForwardRecord` instead of the outputs.
    """
    settings, named = _split(settings)
    effective = _effective(target, settings)
    execution = Execution(program_for(target), effective)
    inputs = _bind_call(target, execution, args, named)
    result = await execution.run(inputs, effective.checkpoint_key or "run")
    return _finished(target, settings, execution, result)


async def resume(state: Pending, answers: Mapping[str, Any]) -> Any:
    """Go on with a run that stopped at human nodes (a :class:`Pending` from :func:`run`),
    given ``answers`` by node id; the nodes finished before are not run again. Returns the
    outputs, or a new :class:`Pending` while some human node still has no answer."""
    given = answered(state, answers)
    effective = _effective(state.target, state.settings)
    execution = Execution(program_for(state.target), effective)
    restored = {**state.finished, **given}
    result = await execution.run(state.inputs, effective.checkpoint_key or "run", restored)
    return _finished(state.target, state.settings, execution, result)


def _finished(
    target: Target, settings: dict[str, Any], execution: Execution, result: RunResult
) -> Any:
    humans = {n.id: n for n in execution.plan.graph.nodes if isinstance(n, HumanNode)}
    pending = pending_of(target, settings, result, humans) if humans else None
    return pending if pending is not None else execution.finish(result)


def run_sync(target: Target, *args: Any, **settings: Any) -> Any:
    """:func:`run` from synchronous code (starts and closes its own event loop)."""
    return asyncio.run(_closing(run(target, *args, **settings)))


async def _closing(work: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await work
    finally:
        await close_shared_managers()


async def stream(
    target: Target, items: Iterable[Any], **settings: Any
) -> AsyncIterator[BatchResult]:
    """Run every item, yielding :class:`BatchResult` in input order (or completion order
    with ``ordered=False``). At most ``max_in_flight`` items are held at once."""
    effective = _effective(target, settings)
    runner = BatchRunner(Execution(program_for(target), effective))
    async for result in runner.results(items):
        yield result


async def run_batch(target: Target, items: Iterable[Any], **settings: Any) -> list[BatchResult]:
    """Every item's :class:`BatchResult`, in input order."""
    settings = {**settings, "ordered": True}
    return [result async for result in stream(target, items, **settings)]


def call_module(module: InferenceModule, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What ``module(...)`` returns outside tracing: a coroutine running it (a list = a batch)."""
    if len(args) == 1 and isinstance(args[0], list):
        return run_batch(module, args[0], **kwargs)
    return run(module, *args, **kwargs)


def _effective(target: Target, settings: dict[str, Any]) -> ExecutionSettings:
    binding = target.__dict__.get("_binding") if isinstance(target, InferenceModule) else None
    return resolve(ExecutionSettings(**settings), binding)


def _split(keywords: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(settings, inputs)``: keywords naming a settings field are settings."""
    if _SETTING_NAMES.issuperset(keywords):
        return keywords, {}
    settings = {k: v for k, v in keywords.items() if k in _SETTING_NAMES}
    return settings, {k: v for k, v in keywords.items() if k not in _SETTING_NAMES}


def _bind_call(
    target: Target, execution: Execution, args: tuple[Any, ...], named: dict[str, Any]
) -> dict[str, Any]:
    specs = execution.plan.graph.inputs
    if isinstance(target, Graph):
        if not args:
            return check_inputs(specs, named)
        if len(args) != 1 or not isinstance(args[0], Mapping) or named:
            raise InputError(
                "run a graph with one dict of inputs, run(graph, {'name': value}), "
                "or by keyword, run(graph, name=value)"
            )
        return check_inputs(specs, args[0])
    return bind_arguments(specs, args, named)


register_runtime(Runtime(call=call_module, bind=ExecutionSettings))
