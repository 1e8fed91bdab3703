"""Engine observers of a job's runs: node rows queued as nodes finish, failed nodes logged."""

from __future__ import annotations

import logging
import time

from app.engine import NodeRecord, NodeStatus
from app.services.runner.node_rows import node_row
from app.services.runner.writer import ResultWriter

log = logging.getLogger(__name__)


class NodeSink:
    """An engine :class:`~app.engine.Observer` that queues every finished node of one job.

    The run label is the item index, so each record becomes the row (job, item, node).
    """

    def __init__(self, job_id: str, writer: ResultWriter) -> None:
        self.job_id = job_id
        self.writer = writer

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        if record.restored:
            return  # already stored before a restart
        self.writer.node(node_row(self.job_id, int(run), record, alias, ended_s=time.time()))


class FailedNodeLog:
    """An engine observer that logs every failed node, with its job, item and node as fields
    (the job and item come from the task's logging context)."""

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        if record.status is not NodeStatus.FAILED or record.restored:
            return
        fields = {"node": record.node, "alias": alias, "error_type": record.error_type}
        log.info("node %s failed: %s", record.node, (record.error or "")[:500], extra=fields)
