"""The simulated model: deterministic, labelled, schema-conforming (pure: no I/O)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from app.engine.llm import LLMRequest
from app.engine.resources.config import EndpointConfig
from app.llm.providers import simulated_client
from app.llm.simulated import SchemaFaker, SimulatedClient, sentences, simulate

DOC = (
    "The Q3 report shows revenue grew 12%. Costs rose by 5% because of new hires. "
    "The team shipped two products! Customer churn fell to 3%. Cash reserves are stable. "
    "Next quarter focuses on Europe."
)


def req(prompt: str = DOC, **kwargs: Any) -> LLMRequest:
    model, system = kwargs.pop("model", "sim-1"), kwargs.pop("system", "")
    return LLMRequest(model=model, system=system, prompt=prompt, **kwargs)


def test_text_reply_is_labelled_and_drawn_from_the_prompt() -> None:
    reply = simulate(req(), "sim-1")
    assert reply.text.startswith("[simulated #")
    lines = reply.text.splitlines()[1:]
    assert 1 <= len(lines) <= 3
    assert all(line.startswith("- ") and line[2:] in DOC for line in lines)
    assert reply.finish_reason == "stop"
    assert reply.model == "sim-1"
    assert reply.extra["simulated"] is True


def test_reply_is_a_pure_function_of_the_request() -> None:
    assert simulate(req(), "m") == simulate(req(), "m")
    assert simulate(req(system="a"), "m").text != simulate(req(system="b"), "m").text
    assert simulate(req(temperature=0.9, seed=4), "m").text == simulate(req(), "m").text


async def test_concurrency_does_not_change_results() -> None:
    client = SimulatedClient("sim-1")
    requests = [req(f"Item {i}. It has {i} parts.") for i in range(50)]
    together = await asyncio.gather(*(client.complete(r) for r in requests))
    one_by_one = [await client.complete(r) for r in reversed(requests)][::-1]
    assert together == one_by_one
    await client.aclose()


def test_token_estimates() -> None:
    reply = simulate(req("abcde", system="xyz"), "m")
    assert reply.input_tokens == math.ceil(3 / 4) + math.ceil(5 / 4)
    assert reply.output_tokens == math.ceil(len(reply.text) / 4)


def test_max_tokens_truncates_with_length() -> None:
    full = simulate(req(), "m")
    cut = simulate(req(max_tokens=5), "m")
    assert cut.finish_reason == "length"
    assert cut.output_tokens == 5
    assert cut.text == full.text[:20]
    assert simulate(req(max_tokens=10_000), "m").finish_reason == "stop"


def test_empty_prompt() -> None:
    assert "empty" in simulate(req(""), "m").text


def test_json_mode_gives_a_labelled_object() -> None:
    data = json.loads(simulate(req(response_format="json"), "m").text)
    assert data["simulated"] is True
    assert data["points"]
    assert all(point in DOC for point in data["points"])


SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 10},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "ok": {"type": "boolean"},
        "label": {"enum": ["good", "bad", "ugly"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4},
        "maybe": {"type": ["null", "integer"]},
        "nothing": {"type": "null"},
        "when": {"type": "string", "format": "date"},
        "fixed": {"const": 42},
        "choice": {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
        "nested": {"type": "object", "properties": {"inner": {"$ref": "#/$defs/point"}}},
    },
    "required": ["title"],
    "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}},
}


def check(value: Any) -> None:
    assert isinstance(value["title"], str)
    assert len(value["title"]) <= 10
    assert value["score"] in range(1, 6)
    assert 0 < value["ratio"] < 1
    assert isinstance(value["ok"], bool)
    assert value["label"] in ("good", "bad", "ugly")
    assert 2 <= len(value["tags"]) <= 4
    assert all(isinstance(tag, str) for tag in value["tags"])
    assert isinstance(value["maybe"], int)
    assert value["nothing"] is None
    assert value["when"] == "2024-01-01"
    assert value["fixed"] == 42
    assert isinstance(value["choice"], bool)
    assert isinstance(value["nested"]["inner"]["x"], float | int)


@pytest.mark.parametrize(
    "response_format",
    [
        SCHEMA,
        {"name": "review", "schema": SCHEMA},
        {"type": "json_schema", "json_schema": {"name": "review", "schema": SCHEMA}},
    ],
)
def test_schema_mode_conforms(response_format: dict[str, Any]) -> None:
    reply = simulate(req(response_format=response_format), "m")
    check(json.loads(reply.text))


def test_schema_values_vary_with_the_request_but_not_between_calls() -> None:
    labels = {SchemaFaker(SCHEMA, f"d{i}", ["x"]).value()["label"] for i in range(30)}
    assert len(labels) > 1
    assert SchemaFaker(SCHEMA, "d1", ["x"]).value() == SchemaFaker(SCHEMA, "d1", ["x"]).value()


def test_recursive_and_odd_schemas_terminate() -> None:
    tree = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    assert isinstance(SchemaFaker(tree, "d", []).value(), dict)
    assert SchemaFaker({"$ref": "#/missing"}, "d", []).value() is None
    assert isinstance(SchemaFaker({}, "d", []).value(), str)
    assert SchemaFaker({"type": "integer", "maximum": -10}, "d", []).value() <= -10


def test_sentences_split_and_clean() -> None:
    assert sentences("1. First point.\n2) Second point?\n* Third") == [
        "First point.",
        "Second point?",
        "Third",
    ]
    assert sentences("In 2024 sales rose.") == ["In 2024 sales rose."]


async def test_factory_uses_endpoint_model_and_latency() -> None:
    endpoint = EndpointConfig(provider="simulated", model="sim-9", simulated_latency_s=0.0)
    client = simulated_client("fast", endpoint)
    reply = await client.complete(req(model="other"))
    assert reply.model == "sim-9"
    await client.aclose()


def test_the_reply_depends_on_the_messages() -> None:
    def reply(text: str) -> str:
        messages = ({"role": "user", "content": text},)
        return simulate(LLMRequest("m", "", "", messages=messages), "m").text

    assert reply("owls") != reply("cats")
    assert reply("owls") == reply("owls")
