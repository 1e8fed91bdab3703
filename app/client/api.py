"""``Client``: the service's HTTP API (``/v1``) from Python, synchronously, on httpx."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from app.client.errors import ClientError, check
from app.client.events import Event, EventFollower, stream_timeout

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 30.0
YAML_SUFFIXES = (".yaml", ".yml")
JSONL_TYPE = "application/x-ndjson"

PathLike = str | os.PathLike[str]

__all__ = ["DEFAULT_URL", "Client", "ClientError", "Event"]


class Client:
    """A client of one inf-engine service; use it as a context manager::

        with Client("http://127.0.0.1:8000", api_key="ie_...") as client:
            job = client.submit("extract-and-compare", "inputs.jsonl")
            final = client.wait(job["id"])

    Methods answer the service's JSON as dicts. A non-2xx answer raises :class:`ClientError`;
    a network failure raises ``httpx.TransportError``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- graphs ----------------------------------------------------------------------------

    def push_graph(self, graph: Mapping[str, Any] | PathLike) -> dict[str, Any]:
        """Upload a graph (a dict, or a ``.json``/``.yaml`` file); idempotent by content.

        ``client.push_graph("graph.yaml")["created"]`` is ``False`` when it was stored already.
        """
        if isinstance(graph, Mapping):
            return self._json("POST", "/v1/graphs", json=dict(graph))
        path = Path(graph)
        kind = "application/yaml" if path.suffix.lower() in YAML_SUFFIXES else "application/json"
        headers = {"Content-Type": kind}
        return self._json("POST", "/v1/graphs", content=path.read_bytes(), headers=headers)

    def graph(self, graph_id: str, version: int | None = None) -> dict[str, Any]:
        """One graph by id or name (its active version unless told) with its ``definition``.

        ``client.graph("extract-and-compare", version=2)["definition"]["nodes"]``
        """
        return self._json("GET", f"/v1/graphs/{graph_id}", params=_params(version=version))

    def graphs(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every graph by name with its active version, fetched a page at a time.

        ``[g["name"] for g in client.graphs()]``
        """
        return self._pages("/v1/graphs", "after", {"limit": page_size})

    def promote(self, graph_id: str, version: int) -> dict[str, Any]:
        """Make ``version`` the graph's active one (what jobs naming no version run).

        ``client.promote("extract-and-compare", 2)["active_version"]`` is ``2``.
        """
        return self._json("POST", f"/v1/graphs/{graph_id}/promote", json={"version": version})

    def rollback(self, graph_id: str, version: int | None = None) -> dict[str, Any]:
        """Move the active version back to the one active before the last move (or to
        ``version``). ``client.rollback("extract-and-compare")["active_version"]``
        """
        body = _params(version=version)
        return self._json("POST", f"/v1/graphs/{graph_id}/rollback", json=body)

    # -- datasets --------------------------------------------------------------------------

    def push_dataset(
        self, items: Sequence[Mapping[str, Any]] | PathLike, name: str
    ) -> dict[str, Any]:
        """Upload a dataset: a JSONL file (streamed up) or a list of ``{"input", "expected"}``
        dicts; idempotent by content.

        ``client.push_dataset("qa.jsonl", name="qa")["created"]`` is ``False`` when stored already.
        """
        headers = {"Content-Type": JSONL_TYPE}
        params = {"name": name}
        if isinstance(items, str | os.PathLike):
            with Path(items).open("rb") as handle:
                return self._json(
                    "POST", "/v1/datasets", params=params, content=handle, headers=headers
                )
        body = "".join(json.dumps(dict(item), ensure_ascii=False) + "\n" for item in items)
        return self._json(
            "POST", "/v1/datasets", params=params, content=body.encode(), headers=headers
        )

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        """A dataset's ``id``, ``name``, ``hash``, ``count`` and ``created_at``.

        ``client.dataset(dataset_id)["count"]``
        """
        return self._json("GET", f"/v1/datasets/{dataset_id}")

    def datasets(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every dataset, newest first, fetched a page at a time.

        ``[d["name"] for d in client.datasets()]``
        """
        return self._pages("/v1/datasets", "before", {"limit": page_size})

    def dataset_items(self, dataset_id: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every item (``index``, ``id``, ``input``, ``expected``) in upload order.

        ``[item["expected"] for item in client.dataset_items(dataset_id)]``
        """
        return self._pages(f"/v1/datasets/{dataset_id}/items", "after", {"limit": page_size})

    # -- jobs ------------------------------------------------------------------------------

    def submit(
        self,
        graph_id: str,
        inputs: Sequence[Mapping[str, Any]] | PathLike,
        *,
        version: int | None = None,
        priority: int = 0,
        webhook_url: str | None = None,
        cache: str | None = None,
        replay: str | None = None,
    ) -> dict[str, Any]:
        """Queue a job: ``inputs`` as a list of dicts, or a JSONL file that is streamed up.
        ``cache`` (``off``, ``read``, ``read_write``) and ``replay`` (``strict``) use the
        response ledger (docs/ledger.md).

        A row may carry ``custom_id`` (unique in the job) and ``metadata`` (string values)
        beside the graph's inputs; its result carries them back.

        ``client.submit("extract-and-compare", [{"doc1": "a", "doc2": "b"}])["id"]``
        ``client.submit("echo", [{"text": "hi", "custom_id": "q1", "metadata": {"src": "a"}}])``
        """
        fields = _params(
            graph_id=graph_id, version=version, webhook_url=webhook_url, cache=cache, replay=replay
        )
        fields["priority"] = priority
        if isinstance(inputs, str | os.PathLike):
            return self._upload(fields, Path(inputs))
        body = {**fields, "inputs": [dict(item) for item in inputs]}
        return self._json("POST", "/v1/jobs", json=body)

    def _upload(self, fields: dict[str, Any], path: Path) -> dict[str, Any]:
        data = {name: str(value) for name, value in fields.items()}
        with path.open("rb") as handle:
            files = {"inputs": (path.name, handle, JSONL_TYPE)}
            return self._json("POST", "/v1/jobs", data=data, files=files)

    def job(self, job_id: str) -> dict[str, Any]:
        """A job's status: ``status``, ``counts``, ``throughput_per_s``, ``eta_s``, ``usage``.

        ``client.job(job_id)["counts"]["succeeded"]``
        """
        return self._json("GET", f"/v1/jobs/{job_id}")

    def jobs(self, status: str | None = None, page_size: int = 50) -> Iterator[dict[str, Any]]:
        """The jobs, newest first (only those in ``status`` if given), a page at a time.

        ``next(client.jobs(status="running"), None)``
        """
        params = _params(limit=page_size, status=status)
        return self._pages("/v1/jobs", "before", params)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job; finished results stay readable. ``client.cancel(job_id)["status"]``"""
        return self._json("POST", f"/v1/jobs/{job_id}/cancel")

    def retry(self, job_id: str) -> dict[str, Any]:
        """Queue a new job that runs the ended job's failed items again; its status, whose
        ``retry_of`` is ``job_id``. ``client.wait(client.retry(job_id)["id"])``"""
        return self._json("POST", f"/v1/jobs/{job_id}/retry")

    def results(self, job_id: str, custom_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Every item (``index``, ``status``, ``output``, ``error``, ``custom_id``, ``metadata``)
        in input order, read line by line from the JSONL stream; with ``custom_id``, only the
        item submitted with it. ``for item in client.results(job_id): print(item["output"])``
        """
        path = f"/v1/jobs/{job_id}/results"
        params = _params(format="jsonl", custom_id=custom_id)
        timeout = stream_timeout(self._http.timeout)
        with self._http.stream("GET", path, params=params, timeout=timeout) as response:
            check(response)
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def result(self, job_id: str, custom_id: str) -> dict[str, Any] | None:
        """The result of the item submitted with ``custom_id``; ``None`` if no item has it.

        ``client.result(job_id, "q1")["output"]``
        """
        page = self._json("GET", f"/v1/jobs/{job_id}/results", params={"custom_id": custom_id})
        items: list[dict[str, Any]] = page["items"]
        return items[0] if items else None

    def waits(self, job_id: str) -> list[dict[str, Any]]:
        """The job's waits at human nodes (``id``, ``item``, ``node``, ``status``, ``prompt``,
        ``answer``, ``deadline``). ``[w["prompt"] for w in client.waits(job_id)]``"""
        page = self._json("GET", f"/v1/jobs/{job_id}/waits")
        waits: list[dict[str, Any]] = page["data"]
        return waits

    def answer(self, job_id: str, index: int, node: str, answer: Any) -> dict[str, Any]:
        """Answer item ``index``'s human node ``node``; a wrong answer raises the 422 naming
        the field, a second answer the 409. ``client.answer(job_id, 0, "ok", {"approve": True})``
        """
        path = f"/v1/jobs/{job_id}/items/{index}/input/{node}"
        return self._json("POST", path, json={"answer": answer})

    def item(self, job_id: str, index: int) -> dict[str, Any]:
        """One item with its input and every node's record. ``client.item(job_id, 0)["nodes"]``"""
        return self._json("GET", f"/v1/jobs/{job_id}/items/{index}")

    def events(self, job_id: str, after: int = 0, reconnects: int = 8) -> Iterator[Event]:
        """The job's events after id ``after``, live, ending after its terminal event.

        A dropped connection is resumed with ``Last-Event-ID``: no event is lost or repeated.

        ``for event in client.events(job_id): print(event.id, event.kind, event.data)``
        """
        return iter(EventFollower(self._http, job_id, after, reconnects))

    def wait(self, job_id: str) -> dict[str, Any]:
        """Follow the job's events to its end and answer its final status.

        ``client.wait(job["id"])["status"]`` is ``completed``, ``failed`` or ``cancelled``.
        """
        for _ in self.events(job_id):
            pass
        return self.job(job_id)

    # -- runs ------------------------------------------------------------------------------

    def run(
        self,
        graph_id: str,
        inputs: Mapping[str, Any],
        version: int | None = None,
        *,
        cache: str | None = None,
        replay: str | None = None,
    ) -> dict[str, Any]:
        """Run a stored graph on one input, synchronously; nothing is stored but, with
        ``cache="read_write"``, its calls in the response ledger.

        ``client.run("extract-and-compare", {"doc1": "a", "doc2": "b"})["outputs"]``
        """
        given = _params(graph_id=graph_id, version=version, cache=cache, replay=replay)
        body = {**given, "inputs": dict(inputs)}
        return self._json("POST", "/v1/runs", json=body)

    # -- evaluations -----------------------------------------------------------------------

    def start_evaluation(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Queue an evaluation: ``spec`` is the ``POST /v1/evaluations`` body.

        ``client.start_evaluation({"graph_id": "g", "dataset": dataset_id,
        "loss": {"verifiers": [{"op": "answer_equals"}]}})["id"]``
        """
        return self._json("POST", "/v1/evaluations", json=dict(spec))

    def evaluation(self, evaluation_id: str) -> dict[str, Any]:
        """An evaluation's ``status``, ``counts`` and, once completed, its ``result``.

        ``client.evaluation(evaluation_id)["result"]["versions"][0]["mean"]``
        """
        return self._json("GET", f"/v1/evaluations/{evaluation_id}")

    def evaluations(self, page_size: int = 50) -> Iterator[dict[str, Any]]:
        """The evaluations, newest first (without results), a page at a time.

        ``[e["status"] for e in client.evaluations()]``
        """
        return self._pages("/v1/evaluations", "before", {"limit": page_size})

    def cancel_evaluation(self, evaluation_id: str) -> dict[str, Any]:
        """Cancel an evaluation. ``client.cancel_evaluation(evaluation_id)["status"]``"""
        return self._json("POST", f"/v1/evaluations/{evaluation_id}/cancel")

    def evaluation_events(
        self, evaluation_id: str, after: int = 0, reconnects: int = 8
    ) -> Iterator[Event]:
        """The evaluation's events after id ``after``, live, resumed like :meth:`events`."""
        return iter(EventFollower(self._http, evaluation_id, after, reconnects, "evaluations"))

    def wait_evaluation(self, evaluation_id: str) -> dict[str, Any]:
        """Follow the evaluation to its end and answer it, with its ``result`` if completed.

        ``client.wait_evaluation(evaluation["id"])["result"]``
        """
        for _ in self.evaluation_events(evaluation_id):
            pass
        return self.evaluation(evaluation_id)

    # -- optimizations ---------------------------------------------------------------------

    def start_optimization(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Queue an optimization run (``spec`` is the ``POST /v1/optimizations`` body), or
        with ``"dry_run": True`` get its projection per role.

        ``client.start_optimization({"graph_id": "g", "train": t, "val": v,
        "loss": {"verifiers": [{"op": "answer_equals"}]}, "budget": {"max_calls": 2000}})["id"]``
        """
        return self._json("POST", "/v1/optimizations", json=dict(spec))

    def optimization(self, optimization_id: str) -> dict[str, Any]:
        """A run's ``state``, ``stop_reason``, ``roles``, ``best``, ``steps`` and ``test``.

        ``client.optimization(run_id)["best"]["version"]``
        """
        return self._json("GET", f"/v1/optimizations/{optimization_id}")

    def optimizations(self, page_size: int = 50) -> Iterator[dict[str, Any]]:
        """The optimization runs, newest first, a page at a time."""
        return self._pages("/v1/optimizations", "before", {"limit": page_size})

    def cancel_optimization(self, optimization_id: str) -> dict[str, Any]:
        """Cancel a run. ``client.cancel_optimization(run_id)["state"]``"""
        return self._json("POST", f"/v1/optimizations/{optimization_id}/cancel")

    def optimization_events(
        self, optimization_id: str, after: int = 0, reconnects: int = 8
    ) -> Iterator[Event]:
        """The run's events after id ``after`` (``step_started``, ``validated``, ``budget``,
        ``accepted``, ...), live, resumed like :meth:`events`."""
        return iter(EventFollower(self._http, optimization_id, after, reconnects, "optimizations"))

    def wait_optimization(self, optimization_id: str) -> dict[str, Any]:
        """Follow the run to its end and answer it. ``client.wait_optimization(id)["test"]``"""
        for _ in self.optimization_events(optimization_id):
            pass
        return self.optimization(optimization_id)

    # -- webhooks --------------------------------------------------------------------------

    def webhook_secret(self, rotate: bool = False) -> str:
        """The secret your webhooks are signed with (a new one if ``rotate``); check a delivery
        with ``verify_webhook(secret, headers["Inf-Delivery"], body, headers["Inf-Signature"])``."""
        if rotate:
            return str(self._json("POST", "/v1/webhooks/secret/rotate")["secret"])
        return str(self._json("GET", "/v1/webhooks/secret")["secret"])

    # -- plumbing --------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = check(self._http.request(method, path, **kwargs))
        answer: dict[str, Any] = response.json()
        return answer

    def _pages(self, path: str, cursor: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            page = self._json("GET", path, params=params)
            yield from page["items"]
            if page.get("next") is None:
                return
            params = {**params, cursor: page["next"]}


def _params(**values: Any) -> dict[str, Any]:
    """The given values that are not ``None``."""
    return {name: value for name, value in values.items() if value is not None}
