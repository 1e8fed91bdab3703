"""Hostile row identities: a job row's ``custom_id`` and ``metadata`` of the wrong type, too
large, repeated, or not text, in a JSON body, a JSONL upload and a results lookup."""

from __future__ import annotations

import json
from typing import Any

from tests.support.hostile import JSON, Hostile


def row(**identity: Any) -> dict[str, Any]:
    return {"graph_id": "echo", "inputs": [{"text": "a", **identity}]}


def submit(name: str, field: str, status: int = 422, **request: Any) -> Hostile:
    return Hostile(f"rows: {name}", "POST", "/v1/jobs", status, field, **request)


def upload(name: str, field: str, lines: bytes, status: int = 422) -> Hostile:
    files = {"inputs": ("in.jsonl", lines, "application/x-ndjson")}
    return submit(f"JSONL {name}", field, status, files=files, data={"graph_id": "echo"})


def lookup(name: str, status: int, field: str, query: str, job: str = "{job}") -> Hostile:
    path = f"/v1/jobs/{job}/results?{query}"
    return Hostile(f"rows: lookup {name}", "GET", path, status, field)


def lines(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(value).encode() + b"\n" for value in rows)


SEVENTEEN = {f"k{i}": "v" for i in range(17)}

CASES = [
    submit("custom_id a number", "inputs[0].custom_id", json_body=row(custom_id=7)),
    submit("custom_id a boolean", "inputs[0].custom_id", json_body=row(custom_id=True)),
    submit("custom_id an object", "inputs[0].custom_id", json_body=row(custom_id={"a": "b"})),
    submit("custom_id empty", "inputs[0].custom_id", json_body=row(custom_id="")),
    submit(
        "custom_id of 513 characters", "inputs[0].custom_id", json_body=row(custom_id="x" * 513)
    ),
    submit("NUL in custom_id", "inputs[0].custom_id", json_body=row(custom_id="a\x00b")),
    submit(
        "lone surrogate in custom_id",
        "inputs[0].custom_id",
        content=b'{"graph_id": "echo", "inputs": [{"text": "a", "custom_id": "\\ud800"}]}',
        headers=JSON,
    ),
    submit(
        "invalid UTF-8 in custom_id",
        "(body)",
        400,
        content=b'{"graph_id": "echo", "inputs": [{"text": "a", "custom_id": "\xff\xfe"}]}',
        headers=JSON,
    ),
    submit(
        "repeated custom_id",
        "inputs[1].custom_id",
        json_body={
            "graph_id": "echo",
            "inputs": [{"text": "a", "custom_id": "x"}, {"text": "b", "custom_id": "x"}],
        },
    ),
    submit("metadata a list", "inputs[0].metadata", json_body=row(metadata=["a"])),
    submit("metadata a string", "inputs[0].metadata", json_body=row(metadata="a=b")),
    submit("metadata value a number", "inputs[0].metadata.n", json_body=row(metadata={"n": 1})),
    submit(
        "metadata value an object",
        "inputs[0].metadata.n",
        json_body=row(metadata={"n": {"deep": "x"}}),
    ),
    submit("metadata of 17 keys", "inputs[0].metadata", json_body=row(metadata=SEVENTEEN)),
    submit("metadata key empty", "inputs[0].metadata", json_body=row(metadata={"": "v"})),
    submit(
        "metadata key of 65 characters",
        "inputs[0].metadata",
        json_body=row(metadata={"k" * 65: "v"}),
    ),
    submit(
        "metadata value of 513 characters",
        "inputs[0].metadata.k",
        json_body=row(metadata={"k": "v" * 513}),
    ),
    submit(
        "NUL in a metadata value", "inputs[0].metadata.k", json_body=row(metadata={"k": "\x00"})
    ),
    submit("NUL in a metadata key", "inputs[0].metadata", json_body=row(metadata={"a\x00": "v"})),
    upload(
        "custom_id a number",
        "inputs[1].custom_id",
        lines({"text": "a"}, {"text": "b", "custom_id": 2}),
    ),
    upload(
        "repeated custom_id",
        "inputs[2].custom_id",
        lines({"text": "a", "custom_id": "x"}, {"text": "b"}, {"text": "c", "custom_id": "x"}),
    ),
    upload(
        "metadata value too long",
        "inputs[0].metadata.k",
        lines({"text": "a", "metadata": {"k": "v" * 513}}),
    ),
    upload(
        "invalid UTF-8 in custom_id",
        "1",
        b'{"text": "a", "custom_id": "\xc3\x28"}\n',
        status=400,
    ),
    lookup("custom_id empty", 422, "custom_id", "custom_id="),
    lookup("custom_id of 513 characters", 422, "custom_id", "custom_id=" + "x" * 513),
    lookup("of an unknown job", 404, "nope", "custom_id=a", job="nope"),
    lookup("NUL in custom_id", 400, "query", "custom_id=a%00b"),
]
