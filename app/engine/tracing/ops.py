"""Operations usable inside ``forward()``: JSON parsing, classification and branching.

Each works on traced values (recording a node) and on plain values (computing directly),
so the same helper code serves tracing and ordinary Python.

>>> classify("Is it raining?", {"question": r"\\?$"}, default="statement")
'question'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from app.engine.errors import BranchError, TraceError
from app.engine.graph.patterns import Classifier
from app.engine.tracing.context import current_tracer
from app.engine.tracing.proxy import TracedValue

Arm = Callable[[], Any] | Any


def parse_json(text: Any) -> Any:
    """Parse model output as JSON (a ``parse_json`` node while tracing)."""
    tracer = current_tracer()
    if tracer is not None:
        return tracer.record_parse_json(text)
    return json.loads(text)


def classify(text: Any, labels: Mapping[str, str], default: str = "other") -> Any:
    """The first label whose pattern matches ``text`` (case-insensitive), else ``default``."""
    tracer = current_tracer()
    if tracer is not None:
        return tracer.record_classify(text, labels, default)
    return Classifier(labels, default).label_of(text)  # exactly what the node computes


def human(
    prompt: Any,
    schema: dict[str, Any] | bool = True,
    *,
    timeout_s: float | None = None,
    on_timeout: str = "fail",
    default: Any = None,
) -> Any:
    """A person's answer, matching ``schema`` (a ``human`` node; only while tracing). ``run()``
    stops there and returns a :class:`~app.engine.execution.pending.Pending` listing the
    waits; ``resume(pending, {node: answer})`` goes on from the finished nodes."""
    tracer = current_tracer()
    if tracer is None:
        raise TraceError("human() records a human node: call it inside forward()")
    options = {"timeout_s": timeout_s, "on_timeout": on_timeout, "default": default}
    return tracer.record_human(prompt, schema, **options)


def branch(cond: Any, if_true: Arm, if_false: Arm) -> Any:
    """``if_true()`` when ``cond`` is ``True``, ``if_false()`` when it is ``False``.

    While tracing, both arms are recorded with ``when`` guards and joined by a
    ``coalesce`` node; ``cond`` must then be a JSON boolean at run time. A condition that
    is not a boolean raises ``BranchError`` (fails the arms' nodes when traced).
    """
    tracer = current_tracer()
    if tracer is None:
        if not isinstance(cond, bool):
            raise BranchError(f"branch() needs a boolean condition (True or False), got {cond!r}")
        return _call(if_true if cond else if_false)
    ref = tracer.as_ref(_traced(cond, "branch"))
    arms = [
        tracer.run_arm(ref, {"equals": True}, if_true),
        tracer.run_arm(ref, {"equals": False}, if_false),
    ]
    return tracer.record_coalesce(arms)


def match_branch(value: Any, cases: Mapping[Any, Arm], default: Arm | None = None) -> Any:
    """Run the arm whose label equals ``value``; ``default`` when none does.

    With no match and no default it raises ``BranchError`` (fails the joining node when traced).

    >>> match_branch("b", {"a": lambda: 1, "b": lambda: 2})
    2
    """
    tracer = current_tracer()
    if tracer is None:
        if value in cases:
            return _call(cases[value])
        if default is None:
            raise BranchError(
                f"match_branch(): {value!r} matches no case ({', '.join(map(repr, cases))}) "
                "and there is no default"
            )
        return _call(default)
    ref = tracer.as_ref(_traced(value, "match_branch"))
    arms = [tracer.run_arm(ref, {"equals": label}, arm) for label, arm in cases.items()]
    if default is not None:
        arms.append(tracer.run_arm(ref, {"not_in": list(cases)}, default))
    return tracer.record_coalesce(arms)


def _traced(value: Any, where: str) -> Any:
    if not isinstance(value, TracedValue):
        raise TraceError(
            f"{where}() while tracing needs a traced value to decide on, got {value!r}"
        )
    return value


def _call(arm: Arm | None) -> Any:
    return arm() if callable(arm) else arm
