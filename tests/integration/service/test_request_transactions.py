"""A request's writes are one unit of work: committed before the answer, or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.support.service import Service

ECHO_GRAPH: dict[str, Any] = {
    "name": "echo",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": "answer", "op": "template", "text": "{text}"}],
    "outputs": {"answer": "answer"},
}


class CommitRefused(RuntimeError):
    pass


@contextmanager
def commits_fail() -> Iterator[None]:
    """Every commit in the process fails while inside (the database refusing it at the end)."""

    def refuse(_session: Session) -> None:
        raise CommitRefused("commit refused")

    event.listen(Session, "before_commit", refuse)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", refuse)


def submitted(service: Service) -> float:
    return service.runtime.metrics.jobs_submitted._value.get()  # type: ignore[attr-defined,no-any-return]


async def test_a_failed_commit_is_an_error_answer_and_nothing_is_stored(service: Service) -> None:
    assert (await service.client.get("/v1/graphs")).status_code == 200  # the key is known now
    with commits_fail():
        response = await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    assert response.status_code == 500
    assert response.json()["type"] == "urn:inf-engine:problem:internal"
    assert (await service.client.get("/v1/graphs")).json()["items"] == []


async def test_a_job_whose_commit_fails_is_neither_stored_nor_counted(service: Service) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    before = submitted(service)
    body: dict[str, Any] = {"graph_id": "echo", "inputs": [{"text": "a"}]}
    with commits_fail():
        response = await service.client.post("/v1/jobs", json=body)
    assert response.status_code == 500
    assert (await service.client.get("/v1/jobs")).json()["items"] == []
    assert submitted(service) == before
    assert (await service.client.post("/v1/jobs", json=body)).status_code == 202
    assert submitted(service) == before + 1
