"""Output limits: a node, or an item, over its size limit fails with the limit named."""

from __future__ import annotations

import tracemalloc

import pytest

from app.engine import (
    ExecutionError,
    GraphLimits,
    GraphValidationError,
    OutputLimits,
    load_graph,
    run,
    run_batch,
)
from app.engine.testing import ScriptedLLM, scripted_manager
from tests.support.graphs import bomb_graph

MIB = 1024 * 1024


async def test_template_bomb_fails_before_building_the_string() -> None:
    graph = load_graph(bomb_graph(21))  # 1 KiB doubled 21 times would be 2 GiB
    tracemalloc.start()
    try:
        with pytest.raises(ExecutionError) as caught:
            await run(graph, {"x": "x" * 1024})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [failure] = caught.value.failures
    assert (failure.node, failure.error_type) == ("t10", "OutputLimitError")
    assert failure.error == (
        "output of node 't10' would be at least 2,097,152 bytes, over the node output limit "
        "of 1,048,576 (max_node_output_bytes)"
    )
    assert peak < 32 * MIB  # the 1 MiB outputs before it, never the 2 GiB


async def test_node_output_limit_counts_model_outputs_and_names_the_setting() -> None:
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"x": {}},
            "nodes": [{"id": "answer", "op": "llm", "alias": "fast", "prompt": "{x}"}],
            "outputs": {"a": "answer"},
        }
    )
    llm = ScriptedLLM(lambda request: "é" * 600)  # 600 characters, 1,200 bytes
    limits = OutputLimits(node_bytes=1000, node_setting="INF_MAX_NODE_OUTPUT_BYTES")
    with pytest.raises(ExecutionError) as caught:
        await run(
            graph, {"x": "q"}, resources=scripted_manager({"fast": llm}), output_limits=limits
        )
    assert caught.value.failures[0].error == (
        "output of node 'answer' is 1,200 bytes, over the node output limit of 1,000 "
        "(INF_MAX_NODE_OUTPUT_BYTES)"
    )


async def test_item_output_limit_fails_the_item_and_other_items_go_on() -> None:
    nodes = [{"id": "c0", "op": "template", "text": "{x}"}]
    nodes += [{"id": f"c{i}", "op": "template", "text": f"{{c{i - 1}}}"} for i in range(1, 5)]
    graph = load_graph({"name": "g", "inputs": {"x": {}}, "nodes": nodes, "outputs": {"o": "c4"}})
    limits = OutputLimits(node_bytes=1000, item_bytes=1000)
    results = await run_batch(graph, [{"x": "a" * 300}, {"x": "b"}], output_limits=limits)
    assert results[1].output == {"o": "b"}
    assert results[1].error is None
    assert isinstance(results[0].error, ExecutionError)
    [failure] = results[0].error.failures
    assert failure.node == "c3"
    assert "over the item output limit of 1,000 (max_item_output_bytes)" in failure.error
    assert "reach 1,200 bytes" in failure.error


async def test_structured_outputs_count_as_their_json_text() -> None:
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"x": {}},
            "nodes": [{"id": "p", "op": "parse_json", "source": "x"}],
            "outputs": {"o": "p"},
        }
    )
    limits = OutputLimits(node_bytes=50)
    assert await run(graph, {"x": '{"a": 1}'}, output_limits=limits) == {"o": {"a": 1}}
    with pytest.raises(ExecutionError, match=r"output of node 'p' is 5[0-9] bytes"):
        await run(graph, {"x": '{"a": "' + "z" * 50 + '"}'}, output_limits=limits)


async def test_prompt_over_the_limit_is_refused_before_the_call() -> None:
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"x": {}},
            "nodes": [{"id": "ask", "op": "llm", "alias": "fast", "prompt": "{x}{x}{x}"}],
            "outputs": {"a": "ask"},
        }
    )
    llm = ScriptedLLM(lambda request: "ok")
    manager = scripted_manager({"fast": llm})
    with pytest.raises(ExecutionError, match="prompt of node 'ask' would be at least 3,000"):
        await run(graph, {"x": "y" * 1000}, resources=manager, output_limits=OutputLimits(2000))
    assert llm.calls == []


def test_oversized_template_is_refused_at_upload_naming_node_and_field() -> None:
    data = {
        "name": "g",
        "inputs": {"x": {}},
        "nodes": [{"id": "t", "op": "template", "text": "{x}" + "z" * 70_000}],
        "outputs": {"o": "t"},
    }
    with pytest.raises(GraphValidationError) as caught:
        load_graph(data)
    [issue] = caught.value.issues
    assert (issue.node, issue.field) == ("t", "text")
    assert issue.message == (
        "template is 70,003 bytes, over the template limit of 65,536 (max_template_bytes)"
    )
    assert load_graph(data, limits=GraphLimits(template_bytes=None)).node("t").op == "template"


async def test_a_failed_node_keeps_its_inputs_within_the_node_limit_without_record() -> None:
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"x": {}},
            "nodes": [{"id": "answer", "op": "llm", "alias": "fast", "prompt": "Q: {x}"}],
            "outputs": {"a": "answer"},
        }
    )
    llm = ScriptedLLM(lambda request: "é" * 600)  # over the node limit: the node fails
    limits = OutputLimits(node_bytes=1000)
    small, large = await run_batch(
        graph,
        [{"x": "q"}, {"x": "y" * 990}],
        resources=scripted_manager({"fast": llm}),
        output_limits=limits,
    )
    assert isinstance(small.error, ExecutionError)
    assert isinstance(large.error, ExecutionError)
    kept = small.error.result.records["answer"].inputs
    assert kept == {"x": "q", "system": "", "prompt": "Q: q"}
    omitted = large.error.result.records["answer"].inputs
    assert list(omitted) == ["(omitted)"]
    assert "over the node output limit of 1,000" in omitted["(omitted)"]
