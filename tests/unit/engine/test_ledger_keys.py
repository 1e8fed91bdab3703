"""The ledger's key: every output-changing field of the request, versioned, with its sample."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from app.engine import ConfigError, ExecutionSettings, load_graph
from app.engine.execution.plan import Plan
from app.engine.ledger import (
    LedgerEntry,
    MemoryLedgerStore,
    Sample,
    canonical_request,
    request_key,
)
from app.engine.ledger import key as key_module
from app.engine.ledger.diff import first_difference
from app.engine.ledger.runs import ledger_of
from app.engine.llm import OPTIONAL_FIELDS, LLMRequest

BASE = LLMRequest("gpt-x", "Be brief.", "hi")
CHANGED: dict[str, Any] = {
    "model": "gpt-y",
    "system": "Be long.",
    "prompt": "hello",
    "messages": ({"role": "user", "content": "earlier"},),
    "response_format": "json",
    "temperature": 0.5,
    "max_tokens": 10,
    "stop": ("\n",),
    "seed": 3,
    "tools": ({"type": "function", "function": {"name": "f", "parameters": {}}},),
    "tool_choice": "required",
    "top_p": 0.9,
    "frequency_penalty": 0.1,
    "presence_penalty": 0.2,
    "logprobs": True,
    "top_logprobs": 2,
    "n": 2,
    "reasoning_effort": "low",
}


FIRST = Sample()


def key_of(request: LLMRequest, sample: Sample = FIRST) -> str:
    return request_key(canonical_request(request), sample)


def test_the_table_covers_every_field_of_a_request() -> None:
    assert set(CHANGED) == set(BASE.__slots__)  # a new field must be added here
    assert set(OPTIONAL_FIELDS) < set(CHANGED)


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_every_field_that_can_change_the_answer_changes_the_key(field: str) -> None:
    assert key_of(replace(BASE, **{field: CHANGED[field]})) != key_of(BASE)


def test_the_same_conversation_spelled_differently_is_one_key() -> None:
    as_messages = LLMRequest(
        "gpt-x",
        "",
        "",
        messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}),
    )
    assert key_of(as_messages) == key_of(BASE)
    listed = replace(BASE, stop=("a", "b"))
    assert request_key({**canonical_request(listed), "stop": ["a", "b"]}) == key_of(listed)


def test_the_sample_and_the_twin_rank_are_in_the_key() -> None:
    keys = {key_of(BASE), key_of(BASE, Sample(1)), key_of(BASE, Sample(0, 1))}
    assert len(keys) == 3


def test_the_key_is_versioned(monkeypatch: pytest.MonkeyPatch) -> None:
    before = key_of(BASE)
    assert before.startswith("v1:")
    monkeypatch.setattr(key_module, "KEY_VERSION", 2)
    after = key_of(BASE)
    assert after.startswith("v2:")
    assert after[3:] != before[3:]


def test_the_first_difference_is_a_path_into_the_request() -> None:
    old = canonical_request(replace(BASE, temperature=0.0))
    assert first_difference(old, canonical_request(replace(BASE, temperature=0.7))) == (
        "temperature"
    )
    assert (
        first_difference(old, canonical_request(replace(BASE, prompt="yo", temperature=0.0)))
        == "messages[1].content"
    )
    assert first_difference(old, old) is None


def test_nodes_making_the_same_call_get_distinct_twin_ranks() -> None:
    vote = {"op": "llm", "alias": "a", "prompt": "Vote: {q}", "temperature": 1.0}
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"q": {"type": "string"}},
            "nodes": [
                {"id": "v1", **vote},
                {"id": "v2", **vote, "priority": 3},
                {"id": "other", **vote, "prompt": "Other: {q}"},
            ],
            "outputs": {"v1": "v1"},
        }
    )
    ranks = {step.id: step.llm.twin for step in Plan(graph).steps if step.llm is not None}
    assert ranks == {"v1": 0, "v2": 1, "other": 0}


def test_a_store_keeps_the_first_answer_of_a_key() -> None:
    store = MemoryLedgerStore()
    first = LedgerEntry("v1:k", "n", {}, {"text": "one"})
    asyncio.run(store.put(first))
    asyncio.run(store.put(replace(first, response={"text": "two"})))
    found = asyncio.run(store.get("v1:k"))
    assert found is not None
    assert found.response == {"text": "one"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ExecutionSettings(cache="sometimes", ledger=MemoryLedgerStore()), "cache must be one of"),
        (ExecutionSettings(replay="lenient", ledger=MemoryLedgerStore()), "replay must be"),
        (ExecutionSettings(cache="read"), "need a ledger"),
        (ExecutionSettings(replay="strict"), "need a ledger"),
    ],
)
def test_unusable_ledger_settings_are_refused(settings: ExecutionSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ledger_of(settings)
