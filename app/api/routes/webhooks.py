"""Webhooks: the tenant's signing secret and each job's deliveries."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ReadSessionDep, SessionDep, TenantDep
from app.api.schemas.jobs import WebhookDeliveries, WebhookSecret
from app.services.requests import jobs, webhook_secrets

router = APIRouter(prefix="/v1", tags=["webhooks"])


@router.get("/webhooks/secret", response_model=WebhookSecret)
async def webhook_secret(session: SessionDep, tenant: TenantDep) -> WebhookSecret:
    """The secret your webhooks are signed with (``Inf-Signature`` header, HMAC-SHA256)."""
    return WebhookSecret(secret=await webhook_secrets.current(session, tenant))


@router.post("/webhooks/secret/rotate", response_model=WebhookSecret)
async def rotate_webhook_secret(session: SessionDep, tenant: TenantDep) -> WebhookSecret:
    """A new secret; webhooks sent from now on are signed with it."""
    return WebhookSecret(secret=await webhook_secrets.rotate(session, tenant))


@router.get("/jobs/{job_id}/webhook", response_model=WebhookDeliveries)
async def job_webhook(job_id: str, session: ReadSessionDep, tenant: TenantDep) -> WebhookDeliveries:
    """Where the job's webhook goes, whether it was delivered, and every attempt."""
    return WebhookDeliveries.model_validate(await jobs.webhook_deliveries(session, tenant, job_id))
