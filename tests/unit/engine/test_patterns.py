"""classify patterns: RE2 (linear time), refused at upload when they cannot run safely."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from app.engine import (
    ExecutionError,
    Graph,
    GraphLimits,
    GraphValidationError,
    OutputLimits,
    classify,
    load_graph,
    run,
)
from app.engine.execution.limits import MAX_MATCH_WORK
from app.engine.execution.plan import Plan


def classify_graph(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "g",
        "inputs": {"x": {}},
        "nodes": [{"id": "k", "op": "classify", "source": "x", "labels": labels, "default": "d"}],
        "outputs": {"kind": "k"},
    }


def issues_of(data: dict[str, Any], **options: Any) -> list[tuple[str | None, str, str]]:
    with pytest.raises(GraphValidationError) as caught:
        load_graph(data, **options)
    return [(i.node, i.field, i.message) for i in caught.value.issues]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a+)\1", "invalid escape sequence"),  # backreference
        (r"(?=a)b", "invalid perl operator"),  # lookahead
        (r"(?<!a)b", "invalid perl operator"),  # lookbehind
        ("a.{999}" * 8, "too complex"),
        ("a.{999}", "too complex: 7,997 instructions, over the limit of 5,000"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_naming_node_and_label(
    pattern: str, reason: str
) -> None:
    [(node, field, message)] = issues_of(classify_graph({"ok": "yes", "bad": pattern}))
    assert (node, field) == ("k", "labels.bad")
    assert message.startswith("invalid regular expression: ")
    assert reason in message


def test_pattern_length_is_limited_and_names_the_setting() -> None:
    graph = classify_graph({"long": "a" * 101})
    limits = GraphLimits(pattern_chars=100, pattern_setting="INF_MAX_PATTERN_CHARS")
    [(node, field, message)] = issues_of(graph, limits=limits)
    assert (node, field) == ("k", "labels.long")
    assert message == (
        "pattern is 101 characters, over the pattern limit of 100 (INF_MAX_PATTERN_CHARS)"
    )
    load_graph(graph, limits=GraphLimits(pattern_chars=101))


def test_a_plan_of_an_unvalidated_graph_refuses_a_backreference() -> None:
    graph = Graph.model_validate(classify_graph({"bad": r"(a)\1"}))
    with pytest.raises(GraphValidationError, match=r"labels\.bad"):
        Plan(graph)


async def test_catastrophic_pattern_on_the_longest_allowed_input_is_fast() -> None:
    # Under Python's re, (a+)+$ on 28 a's and a '!' took 22 s, doubling per extra character.
    graph = load_graph(classify_graph({"evil": r"(a+)+$", "also": r"(a|aa)+b"}))
    text = "a" * (1024 * 1024 - 1) + "!"
    started = time.process_time()
    assert await run(graph, {"x": text}) == {"kind": "d"}
    assert await run(graph, {"x": "a" * 28 + "!"}) == {"kind": "d"}
    assert time.process_time() - started < 5  # generous: RE2 takes milliseconds here


async def test_plan_and_eager_classify_agree_and_ignore_case() -> None:
    labels = {"question": r"\?$", "command": r"^(do|make)\b"}
    graph = load_graph(classify_graph(labels))
    for text, expected in [("Is it?", "question"), ("MAKE tea", "command"), ("tea", "d")]:
        assert await run(graph, {"x": text}) == {"kind": expected}
        assert classify(text, labels, default="d") == expected


async def test_classify_input_longer_than_the_node_output_limit_fails_naming_it() -> None:
    graph = load_graph(classify_graph({"a": "a"}))
    limits = OutputLimits(node_bytes=100)
    assert await run(graph, {"x": "a" * 100}, output_limits=limits) == {"kind": "a"}
    with pytest.raises(ExecutionError) as caught:
        await run(graph, {"x": "a" * 101}, output_limits=limits)
    assert caught.value.failures[0].error == (
        "input of node 'k' is 101 bytes, over the node output limit of 100 (max_node_output_bytes)"
    )


async def test_a_match_over_the_work_budget_fails_before_it_runs() -> None:
    # Two patterns of about 4,900 RE2 instructions each: matching a 900,000-character text
    # could take seconds, so the node fails at once, naming the budget.
    slow = r"(?:a.{12}){50}"
    graph = load_graph(classify_graph({"one": slow, "two": slow + "z"}))
    started = time.perf_counter()
    with pytest.raises(ExecutionError) as caught:
        await run(graph, {"x": "ab" * 450_000})
    assert time.perf_counter() - started < 0.5
    error = caught.value.failures[0].error
    assert error.startswith("input of node 'k' is too long for its patterns: 900,000 characters")
    assert f"matching budget of {MAX_MATCH_WORK:,}" in error
    assert await run(graph, {"x": "ab" * 1_000}) == {"kind": "d"}


async def test_long_texts_are_matched_off_the_event_loop() -> None:
    graph = load_graph(classify_graph({"slow": r"(?:a.{12}){20}z"}))
    text = "".join(random.Random(3).choices("ab", k=1024 * 1024))  # RE2's worst: about 1 s
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    try:
        assert await run(graph, {"x": text}) == {"kind": "d"}
    finally:
        task.cancel()
    assert ticks > 100  # the loop kept running while the pattern was matched


def test_a_classify_node_has_at_most_64_labels() -> None:
    labels = {f"l{i}": "x" for i in range(65)}
    [(node, field, message)] = issues_of(classify_graph(labels))
    assert (node, field) == ("k", "labels")
    assert "at most 64 items" in message
