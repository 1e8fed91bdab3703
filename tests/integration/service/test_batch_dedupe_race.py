"""Identical batch creates at once make one batch: the dedupe is a unique constraint in the
database (tenant + ``Idempotency-Key``, tenant + request hash while within the window), and
the create that loses the race answers the batch that won. Driven by the unmodified
``openai`` SDK (no retries: each answer is the first one) against the service on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from app.settings import Settings
from tests.integration.service.conftest import new_key
from tests.support.batch_sdk import CHAT, chat_line, jsonl, sdk_client, stored_batches, upload
from tests.support.service import Service, serve

AT_ONCE = 8
LINES = 300  # enough that a create's transaction is still open when the others arrive


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    values = {**settings.model_dump(), "files_dir": tmp_path / "files"}
    return Settings.model_validate(values)


@pytest.fixture
async def client(service: Service) -> AsyncIterator[openai.AsyncOpenAI]:
    async with sdk_client(service) as opened:
        yield opened


async def _creates(client: openai.AsyncOpenAI, file_id: str, **options: object) -> set[str]:
    async def one() -> str:
        created = await client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window="24h", **options,  # type: ignore[arg-type]
        )  # fmt: skip
        return created.id

    return set(await asyncio.gather(*(one() for _ in range(AT_ONCE))))


def _lines() -> bytes:
    return jsonl([chat_line(f"r-{i}", f"Say {i}.") for i in range(LINES)])


async def test_identical_creates_at_once_make_one_batch(
    service: Service, client: openai.AsyncOpenAI
) -> None:
    made = await _creates(client, await upload(client, _lines()))
    stored = await stored_batches(service)
    assert len(made) == 1
    assert [batch.id for batch in stored] == list(made)


async def test_creates_with_one_idempotency_key_at_once_make_one_batch(
    service: Service, client: openai.AsyncOpenAI
) -> None:
    headers = {"Idempotency-Key": "race-1"}
    made = await _creates(client, await upload(client, _lines()), extra_headers=headers)
    assert len(made) == 1
    assert [batch.id for batch in await stored_batches(service)] == list(made)


async def test_creates_of_different_files_at_once_are_different_batches(
    service: Service, client: openai.AsyncOpenAI
) -> None:
    files = [await upload(client, _lines()) for _ in range(3)]
    made = await asyncio.gather(*(_creates(client, file_id) for file_id in files))
    assert [len(ids) for ids in made] == [1, 1, 1]
    assert len(await stored_batches(service)) == 3


@pytest.fixture
async def no_window(settings: Settings) -> AsyncIterator[Service]:
    """The service with a dedupe window of 0 s: every create is a new batch."""
    values = {**settings.model_dump(), "batch_dedupe_window_s": 0.0}
    async with serve(Settings.model_validate(values)) as running:
        key = await new_key(running, "a")
        running.client.headers["Authorization"] = f"Bearer {key}"
        yield running


async def test_an_identical_create_after_the_window_is_a_new_batch(no_window: Service) -> None:
    async with sdk_client(no_window) as client:
        file_id = await upload(client, jsonl([chat_line("a", "Hi.")]))
        first = await client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window="24h"
        )
        second = await client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window="24h"
        )
    assert first.id != second.id
    assert len(await stored_batches(no_window)) == 2
