"""A batch's ``usage.input_tokens_details.cached_tokens`` is what the providers reported as
read from their prompt cache: OpenAI's ``prompt_tokens_details.cached_tokens`` and
Anthropic's ``cache_read_input_tokens``, each line's in its chat completion and their sum on
the batch. The fake server (real HTTP) reports a fixed number per answer; the client is the
unmodified ``openai`` SDK.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openai.types.chat import ChatCompletion

from app.settings import Settings
from tests.support.batch_sdk import CHAT, chat_line, file_lines, jsonl, sdk_client, upload
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service

CACHED = 5


@pytest.fixture
def settings(
    settings: Settings, tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """``fast`` (OpenAI-compatible) and ``claude`` (Anthropic), both on the fake server."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    config = {"endpoints": {
        "fast": {"provider": "openai-compatible", "base_url": fake_llm.base_url, "model": "f"},
        "claude": {"provider": "anthropic", "base_url": fake_llm.root_url, "model": "c"},
    }}  # fmt: skip
    path = tmp_path / "cached-endpoints.yaml"
    path.write_text(yaml.safe_dump(config))
    values = {**settings.model_dump(), "endpoints_file": path, "files_dir": tmp_path / "files"}
    return Settings.model_validate(values)


async def test_cached_tokens_come_from_each_providers_usage(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(cached_tokens=CACHED)
    lines = [chat_line(f"o-{i}", f"Say {i}. " * 20) for i in range(3)]
    lines += [
        chat_line(f"a-{i}", f"Say {i}. " * 20, model="claude", max_tokens=50) for i in range(2)
    ]
    async with sdk_client(service) as client:
        created = await client.batches.create(
            input_file_id=await upload(client, jsonl(lines)), endpoint=CHAT,
            completion_window="24h",
        )  # fmt: skip
        await service.run_jobs()
        batch = await client.batches.retrieve(created.id)
        outputs = await file_lines(client, batch.output_file_id)
    assert batch.status == "completed"
    assert len(outputs) == 5
    for one in outputs:
        usage = ChatCompletion.model_validate(one["response"]["body"]).usage
        assert usage is not None
        assert usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == CACHED
        assert usage.prompt_tokens >= CACHED
    assert batch.usage is not None
    assert batch.usage.input_tokens_details.cached_tokens == 5 * CACHED
    assert batch.usage.input_tokens == sum(
        one["response"]["body"]["usage"]["prompt_tokens"] for one in outputs
    )


async def test_no_cached_tokens_reported_is_zero(service: Service) -> None:
    async with sdk_client(service) as client:
        created = await client.batches.create(
            input_file_id=await upload(client, jsonl([chat_line("a", "Hi.")])), endpoint=CHAT,
            completion_window="24h",
        )  # fmt: skip
        await service.run_jobs()
        batch = await client.batches.retrieve(created.id)
    assert batch.usage is not None
    assert batch.usage.input_tokens_details.cached_tokens == 0
    assert batch.usage.input_tokens > 0
