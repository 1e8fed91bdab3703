"""Webhooks: a signed summary POSTed when a job ends, retried with backoff, every attempt kept.

The receivers listen on loopback, which webhooks may not reach by default: these tests are
the operator who opens it (``webhook_allow_networks``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from app.db.base import utcnow
from app.services.runner.webhook_targets import Resolve, system_resolve
from app.services.runner.webhooks import WebhookDispatcher
from app.settings import Settings
from app.signing import DELIVERY_HEADER, HEADER, verify
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service, loopback_webhooks, serve


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return loopback_webhooks(settings)


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers 500 to its first ``failures`` calls."""

    url: str
    failures: int
    calls: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((await request.read(), dict(request.headers)))
        if len(self.calls) <= self.failures:
            return web.Response(status=500, text="not yet")
        return web.Response(status=204)

    async def redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": self.url})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    found = Receiver("", failures=2)
    app.router.add_post("/hook", found.handle)
    app.router.add_post("/moved", found.redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


async def finished_job(service: Service, webhook_url: str | None) -> str:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    body: dict[str, Any] = {"graph_id": "echo", "inputs": [{"text": "hi"}, {"text": "ho"}]}
    if webhook_url is not None:
        body["webhook_url"] = webhook_url
    job = (await service.client.post("/v1/jobs", json=body)).json()
    await service.run_jobs()
    return str(job["id"])


def dispatcher(
    service: Service, settings: Settings | None = None, resolve: Resolve = system_resolve
) -> WebhookDispatcher:
    runtime = service.runtime
    return WebhookDispatcher(
        runtime.sessions, settings or runtime.settings, runtime.metrics, resolve
    )


async def deliver_until_settled(
    service: Service, job_id: str, sender: WebhookDispatcher | None = None
) -> None:
    """Deliver due webhooks, moving the clock past each backoff, until the job's is settled."""
    sender, later = sender or dispatcher(service), utcnow()
    try:
        for _ in range(10):
            later += timedelta(minutes=5)
            await sender.deliver_due(now=later)
            state = (await service.client.get(f"/v1/jobs/{job_id}")).json()["webhook_state"]
            if state != "pending":
                return
    finally:
        await sender.stop()
    raise AssertionError("the webhook never settled")


async def test_a_failing_receiver_gets_retried_and_each_attempt_is_recorded(
    service: Service, receiver: Receiver
) -> None:
    job_id = await finished_job(service, receiver.url)
    await deliver_until_settled(service, job_id)

    record = (await service.client.get(f"/v1/jobs/{job_id}/webhook")).json()
    assert record["url"] == receiver.url
    assert record["state"] == "delivered"
    assert [a["attempt"] for a in record["attempts"]] == [1, 2, 3]
    assert [a["status_code"] for a in record["attempts"]] == [500, 500, 204]
    assert record["attempts"][0]["error"] == "HTTP 500, 7 bytes"
    assert record["attempts"][2]["error"] is None
    status = (await service.client.get(f"/v1/jobs/{job_id}")).json()
    assert (status["webhook_state"], status["webhook_attempts"]) == ("delivered", 3)
    assert len(receiver.calls) == 3


async def test_the_signature_verifies_with_the_documented_helper(
    service: Service, receiver: Receiver
) -> None:
    job_id = await finished_job(service, receiver.url)
    await deliver_until_settled(service, job_id)

    secret = (await service.client.get("/v1/webhooks/secret")).json()["secret"]
    body, headers = receiver.calls[-1]
    assert headers[DELIVERY_HEADER] == job_id
    assert verify(secret, job_id, body, headers[HEADER])
    altered = body.replace(b'"completed"', b'"failed"')
    assert not verify(secret, job_id, altered, headers[HEADER])
    assert not verify(secret + "x", job_id, body, headers[HEADER])
    assert not verify(secret, job_id + "x", body, headers[HEADER])
    summary = (await service.client.get(f"/v1/jobs/{job_id}")).json()
    assert summary["status"] == "completed"
    assert b'"type": "job.completed"' in body


async def test_delivery_gives_up_after_the_last_attempt(
    service: Service, receiver: Receiver
) -> None:
    receiver.failures = 100
    service.runtime.settings.webhook_max_attempts = 3
    job_id = await finished_job(service, receiver.url)
    await deliver_until_settled(service, job_id)

    record = (await service.client.get(f"/v1/jobs/{job_id}/webhook")).json()
    assert record["state"] == "failed"
    assert len(record["attempts"]) == len(receiver.calls) == 3


async def test_jobs_without_a_webhook_send_nothing(service: Service, receiver: Receiver) -> None:
    job_id = await finished_job(service, None)
    sender = dispatcher(service)
    try:
        assert await sender.deliver_due(now=utcnow() + timedelta(days=1)) == 0
    finally:
        await sender.stop()
    assert (await service.client.get(f"/v1/jobs/{job_id}/webhook")).json() == {
        "url": None,
        "state": None,
        "attempts": [],
    }


async def test_the_running_service_delivers_by_itself(
    settings: Settings, receiver: Receiver
) -> None:
    """With its background work on (inline), the service retries on its own clock."""
    receiver.failures = 1
    running = settings.model_copy(
        update={
            "runner_enabled": True,
            "runner_mode": "inline",
            "auth_mode": "open",
            "poll_s": 0.05,
            "webhook_poll_s": 0.05,
            "webhook_backoff_s": 0.05,
        }
    )
    async with serve(running) as service:
        await service.client.post("/v1/graphs", json=ECHO_GRAPH)
        body = {"graph_id": "echo", "inputs": [{"text": "x"}], "webhook_url": receiver.url}
        job_id = (await service.client.post("/v1/jobs", json=body)).json()["id"]
        async with asyncio.timeout(20):
            while True:
                status = (await service.client.get(f"/v1/jobs/{job_id}")).json()
                if status["webhook_state"] == "delivered":
                    break
                await asyncio.sleep(0.05)
    assert len(receiver.calls) == 2


async def test_the_receivers_answer_is_never_shown_only_its_status_and_length(
    service: Service, receiver: Receiver
) -> None:
    receiver.failures = 100
    service.runtime.settings.webhook_max_attempts = 1
    job_id = await finished_job(service, receiver.url)
    await deliver_until_settled(service, job_id)

    answer = await service.client.get(f"/v1/jobs/{job_id}/webhook")
    assert "not yet" not in answer.text
    assert answer.json()["attempts"][0]["error"] == "HTTP 500, 7 bytes"


async def test_redirects_are_not_followed(service: Service, receiver: Receiver) -> None:
    job_id = await finished_job(service, receiver.url.replace("/hook", "/moved"))
    service.runtime.settings.webhook_max_attempts = 1
    await deliver_until_settled(service, job_id)

    record = (await service.client.get(f"/v1/jobs/{job_id}/webhook")).json()
    assert [a["status_code"] for a in record["attempts"]] == [307]
    assert receiver.calls == []


async def test_concurrent_first_deliveries_of_a_fresh_tenant_share_one_secret(
    service: Service, receiver: Receiver
) -> None:
    receiver.failures = 0
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    body = {"graph_id": "echo", "inputs": [{"text": "x"}], "webhook_url": receiver.url}
    for _ in range(12):
        assert (await service.client.post("/v1/jobs", json=body)).status_code == 202
    await service.run_jobs()
    sender = dispatcher(service)
    try:
        assert await sender.deliver_due() == 12
    finally:
        await sender.stop()

    secret = (await service.client.get("/v1/webhooks/secret")).json()["secret"]
    assert len(receiver.calls) == 12
    for sent, headers in receiver.calls:
        assert verify(secret, headers[DELIVERY_HEADER], sent, headers[HEADER])


async def test_an_address_refused_at_delivery_fails_at_once_without_a_connection(
    service: Service, receiver: Receiver
) -> None:
    """Accepted when loopback was open; the dispatcher (restarted with it closed) refuses it."""
    job_id = await finished_job(service, receiver.url)
    closed = service.runtime.settings.model_copy(update={"webhook_allow_networks": []})
    await deliver_until_settled(service, job_id, dispatcher(service, closed))

    record = (await service.client.get(f"/v1/jobs/{job_id}/webhook")).json()
    assert record["state"] == "failed"
    assert [a["error"] for a in record["attempts"]] == ["address 127.0.0.1 is not allowed"]
    assert receiver.calls == []


async def test_a_name_that_resolves_elsewhere_at_delivery_is_checked_again(
    service: Service, receiver: Receiver
) -> None:
    """DNS rebinding: ``localhost`` passed the check at submission; at delivery the name
    resolves to a private address, which is refused, and nothing is sent."""
    job_id = await finished_job(service, receiver.url.replace("127.0.0.1", "localhost"))

    async def rebound(host: str, port: int) -> list[str]:
        return ["10.20.30.40"]

    await deliver_until_settled(service, job_id, dispatcher(service, resolve=rebound))

    record = (await service.client.get(f"/v1/jobs/{job_id}/webhook")).json()
    assert [a["error"] for a in record["attempts"]] == ["address 10.20.30.40 is not allowed"]
    assert receiver.calls == []


async def test_delivery_connects_to_the_checked_address_with_the_urls_host(
    service: Service, receiver: Receiver
) -> None:
    receiver.failures = 0
    url = receiver.url.replace("127.0.0.1", "localhost")
    job_id = await finished_job(service, url)
    asked: list[str] = []

    async def only_v4(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    await deliver_until_settled(service, job_id, dispatcher(service, resolve=only_v4))

    assert asked == ["localhost"]
    assert receiver.calls[0][1]["Host"] == url.split("/")[2]
