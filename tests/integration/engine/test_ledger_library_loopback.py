"""The library's response ledger, ``run(..., ledger=<directory>)``, over real HTTP to the fake
server: calls are counted at the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.engine import (
    ExecutionError,
    InferenceModule,
    LLMInference,
    ResourceConfig,
    ResourceManager,
    run,
)
from app.engine.ledger import LedgerEntry
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM


def recorded(directory: Path) -> list[Path]:
    """The ledger's files (one per recorded call)."""
    return sorted(directory.glob("*/*.json"))


class Summarize(InferenceModule):
    def __init__(self, temperature: float = 0.0) -> None:
        super().__init__()
        self.draft = LLMInference("fast", system_prompt="Draft.", temperature=temperature)
        self.polish = LLMInference("fast", system_prompt="Polish.")

    def forward(self, doc: str) -> Any:
        return self.polish(f"Polish: {self.draft(doc)}")


async def test_a_rerun_from_the_ledger_directory_makes_no_calls(
    fake_llm: FakeLLM, endpoints: MakeManager, tmp_path: Path
) -> None:
    fake_llm.configure(unique_replies=True)
    manager = endpoints(fast={})
    first = await run(Summarize(), "the doc", resources=manager, ledger=tmp_path)
    assert len(fake_llm.log()) == 2
    fake_llm.reset()

    again = await run(Summarize(), "the doc", resources=manager, ledger=tmp_path, cache="read")

    assert (again, fake_llm.log()) == (first, [])
    files = recorded(tmp_path)
    assert len(files) == 2
    stored = [json.loads(path.read_text()) for path in files]  # plain JSON, never pickle
    assert {entry["key"][:3] for entry in stored} == {"v1:"}
    assert manager.endpoint("fast").metrics.snapshot()["ledger"] == {"hits": 2, "misses": 2}


async def test_the_same_request_hits_through_another_transport(
    fake_llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key, base URL and headers are transport: another address of the same server, another
    key, the same model and request -> the recorded answer."""
    fake_llm.configure(unique_replies=True)
    monkeypatch.setenv("INF_LEDGER_TEST_KEY", "sk-another")
    one = {"provider": "openai-compatible", "model": "fast", "base_url": fake_llm.base_url}
    other = {**one, "base_url": fake_llm.base_url.replace("127.0.0.1", "localhost")}
    other |= {"api_key_env": "INF_LEDGER_TEST_KEY", "headers": {"X-Team": "b"}}
    first_manager = ResourceManager(ResourceConfig.from_dict({"endpoints": {"fast": one}}))
    second_manager = ResourceManager(ResourceConfig.from_dict({"endpoints": {"fast": other}}))
    async with first_manager, second_manager:
        first = await run(Summarize(), "doc", resources=first_manager, ledger=tmp_path)
        fake_llm.reset()
        again = await run(Summarize(), "doc", resources=second_manager, ledger=tmp_path)
    assert (again, fake_llm.log()) == (first, [])


async def test_a_new_sample_index_reaches_the_server_and_an_old_one_replays(
    fake_llm: FakeLLM, endpoints: MakeManager, tmp_path: Path
) -> None:
    fake_llm.configure(unique_replies=True)
    manager = endpoints(fast={})
    llm = LLMInference("fast", temperature=1.0)
    zero = await run(llm, "Pick a name.", resources=manager, ledger=tmp_path)
    one = await run(llm, "Pick a name.", resources=manager, ledger=tmp_path, sample=1)
    assert len(fake_llm.log()) == 2
    assert zero != one

    assert await run(llm, "Pick a name.", resources=manager, ledger=tmp_path, sample=1) == one
    assert await run(llm, "Pick a name.", resources=manager, ledger=tmp_path) == zero
    assert len(fake_llm.log()) == 2


async def test_an_error_is_not_recorded_and_strict_replay_names_the_field(
    fake_llm: FakeLLM, endpoints: MakeManager, tmp_path: Path
) -> None:
    fake_llm.configure(rules=[{"match": "Draft.", "status": 400, "times": 1}])
    manager = endpoints(fast={})
    with pytest.raises(ExecutionError):
        await run(Summarize(), "doc", resources=manager, ledger=tmp_path)
    assert recorded(tmp_path) == []
    with pytest.raises(ExecutionError, match="holds no request of it"):
        await run(Summarize(), "doc", resources=manager, ledger=tmp_path, replay="strict")

    done = await run(Summarize(), "doc", resources=manager, ledger=tmp_path)
    assert [entry["status"] for entry in fake_llm.log()] == [400, 200, 200]
    assert await run(Summarize(), "doc", resources=manager, ledger=tmp_path, replay="strict") == (
        done
    )
    with pytest.raises(ExecutionError, match="field 'temperature'") as failed:
        await run(Summarize(0.5), "doc", resources=manager, ledger=tmp_path, replay="strict")
    assert failed.value.result.records["draft"].error_type == "LedgerMissError"
    assert len(fake_llm.log()) == 3


async def test_cache_off_neither_reads_nor_writes(
    fake_llm: FakeLLM, endpoints: MakeManager, tmp_path: Path
) -> None:
    manager = endpoints(fast={})
    await run(Summarize(), "doc", resources=manager, ledger=tmp_path)
    await run(Summarize(), "doc", resources=manager, ledger=tmp_path, cache="off")
    await run(Summarize(), "other", resources=manager, ledger=tmp_path, cache="off")
    assert len(fake_llm.log()) == 6
    assert len(recorded(tmp_path)) == 2


async def test_an_endpoints_cache_is_the_default_of_its_calls(
    fake_llm: FakeLLM, endpoints: MakeManager, tmp_path: Path
) -> None:
    manager = endpoints(fast={"cache": "off"})
    await run(Summarize(), "doc", resources=manager, ledger=tmp_path)
    assert recorded(tmp_path) == []
    await run(Summarize(), "doc", resources=manager, ledger=tmp_path, cache="read_write")
    assert len(recorded(tmp_path)) == 2


class UnreachableStore:
    """A ledger store whose storage is down: every operation raises."""

    async def get(self, key: str) -> LedgerEntry | None:
        raise OSError("storage unreachable")

    async def put(self, entry: LedgerEntry) -> None:
        raise OSError("storage unreachable")

    async def recorded(self, node: str, limit: int = 200) -> list[LedgerEntry]:
        raise OSError("storage unreachable")


async def test_a_ledger_that_does_not_answer_is_a_miss_and_fails_strict_replay(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    manager = endpoints(fast={})
    store = UnreachableStore()
    out = await run(Summarize(), "doc", resources=manager, ledger=store)
    assert out.startswith("reply[")
    assert len(fake_llm.log()) == 2
    with pytest.raises(ExecutionError, match="the ledger did not answer: storage unreachable"):
        await run(Summarize(), "doc", resources=manager, ledger=store, replay="strict")
    assert len(fake_llm.log()) == 2
