"""Hostile job submissions and runs: lenient types, NUL, deep nesting, huge numbers, bad JSONL."""

from __future__ import annotations

import json
from typing import Any

from tests.support.hostile import JSON, Hostile


def job(**changes: Any) -> dict[str, Any]:
    return {"graph_id": "echo", "inputs": [{"text": "a"}], **changes}


def submit(name: str, status: int, field: str | None, **request: Any) -> Hostile:
    return Hostile(f"jobs: {name}", "POST", "/v1/jobs", status, field, **request)


def run(name: str, status: int, field: str | None, **request: Any) -> Hostile:
    return Hostile(f"runs: {name}", "POST", "/v1/runs", status, field, **request)


def upload(name: str, status: int, field: str, lines: bytes, **form: str) -> Hostile:
    files = {"inputs": ("in.jsonl", lines, "application/x-ndjson")}
    data = {"graph_id": "echo", **form}
    return submit(f"JSONL {name}", status, field, files=files, data=data)


def deep_inputs(depth: int) -> bytes:
    return b'{"graph_id": "echo", "inputs": [{"text": ' + b"[" * depth + b"]" * depth + b"}]}"


CASES = [
    submit("boolean priority", 422, "priority", json_body=job(priority=True)),
    submit("priority as text", 422, "priority", json_body=job(priority="1")),
    submit("priority of 2^63", 422, "priority", json_body=job(priority=2**63)),
    submit("boolean version", 422, "version", json_body=job(version=True)),
    submit("version of 2^63", 422, "version", json_body=job(version=2**63)),
    submit("version of 2^31", 422, "version", json_body=job(version=2**31)),
    submit("text/plain JSON body", 415, "Content-Type", content=json.dumps(job()).encode()),
    submit(
        "malformed JSON", 400, "(body)", content=b'{"graph_id": "echo", "inputs": [', headers=JSON
    ),
    submit("NUL in graph_id", 422, "graph_id", json_body=job(graph_id="ec\x00ho")),
    submit("NUL in an input", 422, "inputs[0].text", json_body=job(inputs=[{"text": "a\x00"}])),
    submit("NUL in an input's key", 422, "inputs[0]", json_body=job(inputs=[{"te\x00xt": "a"}])),
    submit("NUL in webhook_url", 422, "webhook_url", json_body=job(webhook_url="http://a\x00b/")),
    submit(
        "lone surrogate in an input",
        422,
        "inputs[0].text",
        content=b'{"graph_id": "echo", "inputs": [{"text": "\\udfff"}]}',
        headers=JSON,
    ),
    submit(
        "inputs nested 10,000 deep",
        422,
        "(body)",
        content=lambda: deep_inputs(10_000),
        headers=JSON,
    ),
    submit(
        "Infinity in an input",
        400,
        "(body)",
        content=b'{"graph_id": "echo", "inputs": [{"text": Infinity}]}',
        headers=JSON,
    ),
    submit("unknown field", 422, "colour", json_body=job(colour="red")),
    submit("unknown graph", 404, "nope", json_body=job(graph_id="nope")),
    submit("input of the wrong type", 422, "inputs[0]", json_body=job(inputs=[{"text": 5}])),
    upload("line nested 4,000 deep", 422, "1", b'{"text": ' + b"[" * 4_000 + b"]" * 4_000 + b"}\n"),
    upload("NUL in a line", 422, "2", b'{"text": "a"}\n{"text": "b\\u0000"}\n'),
    upload("NaN in a line", 400, "1", b'{"text": NaN}\n'),
    upload("integer of 5,000 digits", 400, "1", b'{"text": ' + b"7" * 5000 + b"}\n"),
    upload("priority not a number", 422, "priority", b'{"text": "a"}\n', priority="soon"),
    upload("version of 2^63", 422, "version", b'{"text": "a"}\n', version=str(2**63)),
    upload("NUL in graph_id", 422, "graph_id", b'{"text": "a"}\n', graph_id="ec\x00ho"),
    run("text/plain JSON body", 415, "Content-Type", content=json.dumps(job()).encode()),
    run(
        "NUL in an input",
        422,
        "inputs.text",
        json_body={"graph_id": "echo", "inputs": {"text": "\x00"}},
    ),
    run(
        "boolean version",
        422,
        "version",
        json_body={"graph_id": "echo", "version": True, "inputs": {"text": "a"}},
    ),
    run(
        "inputs nested 10,000 deep",
        422,
        "(body)",
        content=lambda: (
            b'{"graph_id": "echo", "inputs": {"text": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
        ),
        headers=JSON,
    ),
]
