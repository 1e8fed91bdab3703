"""Hostile input that is accepted and must then fail alone: catastrophic patterns, output
bombs, values the database refuses, and webhook targets inside the network."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.graphs import bomb_graph, classify_graph
from tests.support.hostile import Baseline, Hostile
from tests.support.service import Service

EVIL = "(a+)+$"


PARSE_GRAPH = {
    "name": "parse",
    "inputs": {"x": {"type": "string"}},
    "nodes": [{"id": "parsed", "op": "parse_json", "source": "x"}],
    "outputs": {"parsed": "parsed"},
}


def uploaded(response: httpx.Response) -> str:
    # 200 on a case's second attempt (run_case retries when /healthz was late): same graph.
    assert response.status_code in (200, 201), response.text
    return str(response.json()["name"])


async def one_item_job(service: Service, graph: str, item: dict[str, Any]) -> dict[str, Any]:
    """Submit one item, run it to the end, and return the item's detail."""
    body = {"graph_id": graph, "inputs": [item]}
    submitted = await service.client.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    await service.run_jobs()
    job = submitted.json()["id"]
    status = (await service.client.get(f"/v1/jobs/{job}")).json()
    assert status["status"] == "completed", status
    detail = await service.client.get(f"/v1/jobs/{job}/items/0")
    return dict(detail.json())


def redos_run(length: int) -> Any:
    async def check(service: Service, response: httpx.Response, _: Baseline) -> None:
        graph = uploaded(response)
        body = {"graph_id": graph, "inputs": {"text": "a" * length + "!"}}
        run = await service.client.post("/v1/runs", json=body)
        assert run.status_code == 200, run.text
        assert run.json()["outputs"] == {"kind": "fine"}

    return check


async def bomb_fails_its_item(service: Service, response: httpx.Response, _: Baseline) -> None:
    item = await one_item_job(service, uploaded(response), {"x": "x" * 1024})
    assert item["status"] == "failed", item
    assert "INF_MAX_NODE_OUTPUT_BYTES" in item["error"], item["error"]


async def nul_output_fails_its_item(
    service: Service, response: httpx.Response, _: Baseline
) -> None:
    item = await one_item_job(service, uploaded(response), {"x": '"a\\u0000b"'})
    assert item["status"] == "failed", item
    assert item["error"].startswith("parsed: UnstorableOutput"), item["error"]
    assert "NUL" in item["error"], item["error"]


def accepted(name: str, graph: dict[str, Any], check: Any) -> Hostile:
    return Hostile(name, "POST", "/v1/graphs", 201, None, json_body=graph, check=check)


def webhook(target: str) -> Hostile:
    body = {"graph_id": "echo", "inputs": [{"text": "a"}], "webhook_url": target}
    return Hostile(
        f"jobs: webhook to {target}", "POST", "/v1/jobs", 422, "webhook_url", json_body=body
    )


CASES = [
    accepted("runs: (a+)+$ on 28 a's and a '!'", classify_graph(EVIL), redos_run(28)),
    accepted("runs: (a+)+$ on 100,000 a's and a '!'", classify_graph(EVIL), redos_run(100_000)),
    accepted("runs: (a|aa)+$ on 100,000 a's", classify_graph("(a|aa)+$"), redos_run(100_000)),
    Hostile(
        "graph: backreference pattern",
        "POST",
        "/v1/graphs",
        422,
        "labels",
        json_body=classify_graph(r"(a+)\1$"),
    ),
    Hostile(
        "graph: lookahead pattern",
        "POST",
        "/v1/graphs",
        422,
        "labels",
        json_body=classify_graph("(?=a+)+$"),
    ),
    Hostile(
        "graph: template over the template limit",
        "POST",
        "/v1/graphs",
        422,
        "prompt",
        json_body={
            "name": "wordy",
            "inputs": {"text": {"type": "string"}},
            "nodes": [{"id": "a", "op": "llm", "alias": "fast", "prompt": "x" * 70_000}],
            "outputs": {"a": "a"},
        },
    ),
    accepted("jobs: 21 nodes doubling a 1 KiB text", bomb_graph(), bomb_fails_its_item),
    accepted("jobs: a parsed output holding NUL", PARSE_GRAPH, nul_output_fails_its_item),
    *(
        webhook(target)
        for target in (
            "http://127.0.0.1/hook",
            "http://127.1/hook",
            "http://2130706433/hook",
            "http://0x7f000001/hook",
            "http://[::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://localhost/hook",
            "http://0.0.0.0/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/hook",
            "http://192.168.1.1/hook",
        )
    ),
]
