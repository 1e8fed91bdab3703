"""What a service process does besides answering requests: it runs jobs, delivers webhooks
and deletes expired jobs. The HTTP process runs this in a child process (the default) or on
its own event loop (``runner_mode = inline``)."""

from __future__ import annotations

from prometheus_client.core import Metric

from app.services.observability.health import RunnerHealth
from app.services.runner.dispatcher import DispatchContext, RunDispatcher
from app.services.runner.retention import RetentionSweeper
from app.services.runner.webhooks import WebhookDispatcher


class Background:
    """The job runner, the webhook dispatcher and the retention sweeper, started and stopped
    together; the service's ``RunnerHandle`` (``notify``, ``cancel_local``, ``alive``)."""

    def __init__(self, context: DispatchContext, owner: str | None = None) -> None:
        settings, metrics = context.settings, context.metrics
        self.runner = RunDispatcher(context, owner)
        self.webhooks = WebhookDispatcher(context.sessions, settings, metrics)
        self.retention = RetentionSweeper(context.sessions, settings, metrics)

    async def start(self) -> None:
        await self.runner.start()
        self.webhooks.start()
        self.retention.start()

    @property
    def alive(self) -> bool:
        return self.runner.alive

    @property
    def health(self) -> RunnerHealth:
        """On the HTTP process's own loop: up while its loops run, never restarted."""
        return self.runner.health

    def notify(self) -> None:
        self.runner.notify()

    def cancel_local(self, job_id: str) -> None:
        self.runner.cancel_local(job_id)

    async def metrics_families(self) -> list[Metric] | None:
        # Nothing of its own: it counts into its process's metrics. ``None``: not running.
        return [] if self.alive else None

    async def stop(self) -> None:
        """Stop claiming (running jobs are leased back), then the other loops."""
        await self.runner.stop()
        await self.webhooks.stop()
        await self.retention.stop()
