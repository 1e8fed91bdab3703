"""Hostile graph uploads: bodies that do not parse, nest too deeply, hold NUL, or lie."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support.hostile import ECHO_GRAPH, JSON, Hostile

YAML = {"content-type": "application/yaml"}


def graph(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(ECHO_GRAPH)
    data.update(changes)
    return data


def node(**changes: Any) -> dict[str, Any]:
    return graph(nodes=[{**ECHO_GRAPH["nodes"][0], **changes}])


def deep_json(depth: int) -> bytes:
    return b'{"name": "deep", "parameters": ' + b"[" * depth + b"]" * depth + b"}"


def deep_yaml(depth: int) -> bytes:
    return b"name: deep\nparameters: " + b"[" * depth + b"]" * depth + b"\n"


def laughs() -> bytes:
    """A YAML "billion laughs": nine levels of nine aliases expand to 9^9 strings."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return ("\n".join(lines) + "\n").encode()


def post(name: str, status: int, field: str | None, **request: Any) -> Hostile:
    return Hostile(f"graph: {name}", "POST", "/v1/graphs", status, field, **request)


CYCLE = graph(
    nodes=[
        {"id": "a", "op": "template", "text": "{b} {text}"},
        {"id": "b", "op": "template", "text": "{a}"},
    ],
    outputs={"o": "a"},
)

CHAT_ROOT = {"role": "root", "content": "{text}"}
USER_GHOST = {"role": "user", "content": [{"type": "text", "text": "{ghost}"}]}
USER_POSITIONAL_IMAGE = {
    "role": "user",
    "content": [{"type": "image_url", "image_url": {"url": "{0}"}}],
}

CASES = [
    post("malformed JSON", 400, "(body)", content=b'{"name": "echo",', headers=JSON),
    post("invalid UTF-8", 400, "(body)", content=b'{"name": "\xc3\x28"}', headers=JSON),
    post("JSON nested 10,000 deep", 422, "(body)", content=lambda: deep_json(10_000), headers=JSON),
    post("JSON nested 100 deep", 422, "(body)", content=lambda: deep_json(100), headers=JSON),
    post("YAML nested 10,000 deep", 422, "(body)", content=lambda: deep_yaml(10_000), headers=YAML),
    post("YAML billion laughs", 422, "YAML alias", content=laughs(), headers=YAML),
    post("YAML date value", 422, "name", content=b"name: 2026-12-02\n", headers=YAML),
    post("YAML integer keys", 422, "inputs", content=b"name: x\ninputs: {1: 2}\n", headers=YAML),
    post("NaN number", 400, "(body)", content=b'{"name": "x", "a": NaN}', headers=JSON),
    post(
        "integer of 5,000 digits",
        400,
        "(body)",
        content=b'{"v": ' + b"9" * 5000 + b"}",
        headers=JSON,
    ),
    post("NUL in the name", 422, "name", json_body=graph(name="ec\x00ho")),
    post("NUL in a node id", 422, "nodes[0].id", json_body=node(id="ans\x00wer")),
    post("NUL in a prompt", 422, "nodes[0].prompt", json_body=node(prompt="{text}\x00")),
    post("NUL in an input name", 422, "inputs", json_body=graph(inputs={"te\x00xt": {}})),
    post(
        "lone surrogate in the name",
        422,
        "name",
        content=b'{"name": "\\ud800", "nodes": []}',
        headers=JSON,
    ),
    post("text/plain body", 415, "Content-Type", content=json.dumps(ECHO_GRAPH).encode()),
    post(
        "form-encoded body",
        415,
        "Content-Type",
        content=b"name=echo",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    post("a JSON list", 422, "(body)", json_body=[ECHO_GRAPH]),
    post("cycle", 422, "text", json_body=CYCLE),
    post("unknown reference", 422, "prompt", json_body=node(prompt="{ghost}")),
    post("attribute template", 422, "prompt", json_body=node(prompt="{x.__class__}")),
    post("positional template", 422, "prompt", json_body=node(prompt="{0}")),
    post("format spec template", 422, "prompt", json_body=node(prompt="{text:>99999999}")),
    post("conversion template", 422, "prompt", json_body=node(prompt="{text!r}")),
    post("unknown field", 422, "colour", json_body=graph(colour="red")),
    post("wrong type of nodes", 422, "nodes", json_body=graph(nodes="answer")),
    post("max_tokens of 2^64", 422, "max_tokens", json_body=node(max_tokens=2**64)),
    post("top_p as text", 422, "top_p", json_body=node(top_p="high")),
    post("logprobs as text", 422, "logprobs", json_body=node(logprobs="yes")),
    post("tool_choice without tools", 422, "tool_choice", json_body=node(tool_choice="auto")),
    post("message role unknown", 422, "messages.0.role", json_body=node(messages=[CHAT_ROOT])),
    post(
        "message template unknown name",
        422,
        "messages[0].content[0].text",
        json_body=node(messages=[USER_GHOST]),
    ),
    post(
        "message image URL as a positional template",
        422,
        "messages[0].content[0].image_url.url",
        json_body=node(messages=[USER_POSITIONAL_IMAGE]),
    ),
    post(
        "oversized body",
        413,
        "(body)",
        content=lambda: b'{"name": "' + b"x" * 2_100_000 + b'"}',
        headers=JSON,
    ),
    post(
        "JSON over the JSON limit",
        413,
        "(body)",
        content=lambda: b'{"name": "' + b"x" * 1_500_000 + b'"}',
        headers=JSON,
    ),
]
