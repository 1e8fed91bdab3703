"""Job webhooks: when a job ends, its ``webhook_url`` gets a signed JSON summary.

Delivery is at-least-once and durable: the job row records that a delivery is due
(``webhook_state = 'pending'``), a dispatcher in each service process claims due ones, POSTs
them, and records every attempt. A failed attempt (no answer, or not 2xx) is retried after
``webhook_backoff_s``, doubling each time, up to ``webhook_max_attempts``.

The delivery id (``Inf-Delivery``, the job id: it lets a receiver drop repeats) and the body
are signed with the tenant's secret (``GET /v1/webhooks/secret``) in the ``Inf-Signature``
header; receivers check it with :func:`app.signing.verify`.

Only allowed addresses are reached (:mod:`app.services.runner.webhook_targets`): a refused one fails
the delivery at once. Redirects are not followed, and the target's answer is never kept or
shown: an attempt records its status code and its length.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.models import Job
from app.db.repositories import jobs as jobs_repo
from app.db.repositories import webhooks as repo
from app.db.repositories.webhooks import Attempt
from app.lifecycle import WebhookState
from app.services.batches.events import batch_event
from app.services.batches.kind import OPENAI_BATCH
from app.services.job_views import job_view
from app.services.observability.metrics import ServiceMetrics
from app.services.runner.periodic import Periodic
from app.services.runner.webhook_targets import (
    AddressPolicy,
    AddressRefused,
    GuardedTransport,
    Resolve,
    check_url,
    system_resolve,
)
from app.settings import Settings
from app.signing import DELIVERY_HEADER, HEADER, signature_header

BATCH = 32
MAX_BACKOFF_S = 3600.0
ERROR_CHARS = 500
BODY_LIMIT = 65_536


class WebhookDispatcher:
    """Delivers due webhooks every ``webhook_poll_s`` (``start``/``stop``), or once
    (``deliver_due``); ``resolve`` is the host resolver its connections are checked with."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: ServiceMetrics,
        resolve: Resolve = system_resolve,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.metrics = metrics
        transport = GuardedTransport(address_policy(settings, resolve))
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            trust_env=False,
        )
        self._loop = Periodic("webhooks", self._deliver_all_due, settings.webhook_poll_s)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._client.aclose()

    async def _deliver_all_due(self) -> None:
        while await self.deliver_due() == BATCH:
            pass

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Try every due delivery once (up to a batch); returns how many were tried."""
        hold_s = self.settings.webhook_timeout_s + 5.0
        async with self.sessions() as session:
            due = await repo.claim_due(session, now or utcnow(), hold_s, BATCH)
            await session.commit()
        await asyncio.gather(*(self._deliver(job) for job in due))
        return len(due)

    async def _deliver(self, job: Job) -> None:
        body, secret = await self._message(job)
        started, at = time.perf_counter(), utcnow()
        answer = await self._post(job, body, secret)
        attempt = self._outcome(job, at, answer, time.perf_counter() - started)
        async with self.sessions() as session:
            await repo.record_attempt(session, attempt)
            await session.commit()
        self.metrics.webhook_attempts.labels(_outcome_label(attempt.state)).inc()

    async def _message(self, job: Job) -> tuple[bytes, str]:
        if job.kind == OPENAI_BATCH:
            return await self._batch_message(job)
        async with self.sessions() as session:
            found = await jobs_repo.get_job_with_graph(session, job.tenant_id, job.id)
            secret = await repo.secret_of(session, job.tenant_id)
            await session.commit()
        assert found is not None
        summary = job_view(*found)
        payload = {"type": f"job.{summary.status}", "job": summary.as_json()}
        return json.dumps(payload, default=_iso).encode(), secret

    async def _batch_message(self, job: Job) -> tuple[bytes, str]:
        """A Batch API batch's event, in OpenAI's shape (``batch.completed`` ...)."""
        async with self.sessions() as session:
            event = await batch_event(session, job)
            secret = await repo.secret_of(session, job.tenant_id)
            await session.commit()
        return json.dumps(event).encode(), secret

    async def _post(self, job: Job, body: bytes, secret: str) -> Answer:
        assert job.webhook_url is not None
        headers = {
            "Content-Type": "application/json",
            HEADER: signature_header(secret, job.id, body),
            DELIVERY_HEADER: job.id,
            "User-Agent": "inf-engine-webhooks",
        }
        limit_s = self.settings.webhook_timeout_s
        try:
            async with asyncio.timeout(limit_s):
                return await self._send(job.webhook_url, body, headers)
        except TimeoutError:
            return Answer(None, f"no answer within {limit_s:g} s")
        except AddressRefused as exc:
            return Answer(None, str(exc), final=True)
        except httpx.HTTPError as exc:
            return Answer(None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST, then report the status and the answer's length, never its content."""
        async with self._client.stream("POST", url, content=body, headers=headers) as response:
            size = await _length(response)
        if response.is_success:
            return Answer(response.status_code, None)
        return Answer(response.status_code, f"HTTP {response.status_code}, {size}")

    def _outcome(self, job: Job, at: datetime, answer: Answer, seconds: float) -> Attempt:
        number, code, error = job.webhook_attempts + 1, answer.status_code, answer.error
        if error is None:
            return Attempt(job.id, number, at, code, None, seconds, WebhookState.DELIVERED, None)
        if answer.final or number >= self.settings.webhook_max_attempts:
            return Attempt(job.id, number, at, code, error, seconds, WebhookState.FAILED, None)
        wait = min(MAX_BACKOFF_S, self.settings.webhook_backoff_s * 2 ** (number - 1))
        retry_at = utcnow() + timedelta(seconds=wait)
        return Attempt(job.id, number, at, code, error, seconds, WebhookState.PENDING, retry_at)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one POST came to: the status (if any answer), an error unless 2xx, and whether
    trying again is pointless (the target is refused)."""

    status_code: int | None
    error: str | None
    final: bool = False


async def _length(response: httpx.Response) -> str:
    """The answer's length in bytes, read up to ``BODY_LIMIT`` and then dropped."""
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > BODY_LIMIT:
            return f"over {BODY_LIMIT:,} bytes"
    return f"{size:,} bytes"


def address_policy(settings: Settings, resolve: Resolve = system_resolve) -> AddressPolicy:
    """The addresses webhooks may reach under ``settings`` (``webhook_allow_networks``)."""
    return AddressPolicy(
        settings.webhook_allow_networks, settings.webhook_resolve_timeout_s, resolve
    )


async def check_webhook_url(url: str | None, settings: Settings) -> None:
    """Refuse, at submission, a ``webhook_url`` whose host is not allowed (``InvalidInput``)."""
    if url is not None:
        await check_url(url, address_policy(settings))


def _outcome_label(state: str) -> str:
    return {WebhookState.PENDING.value: "retry"}.get(state, state)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
