"""Helpers for optimization tests: scripted replies for the optimizer's roles (they stand for
external models) and small recorded graphs.

``tagging_critic`` answers a critic request with one CRITIQUE block per target, tagged
``[NODE->TARGET]`` and quoting every feedback item it was sent, so a test can follow which
node's text reached which target.
"""

from __future__ import annotations

import re
from typing import Any

from app.engine import run
from app.engine.llm import LLMRequest
from app.engine.records import ForwardRecord

_NODE = re.compile(r'<NODE id="([^"]+)">')
_TARGET = re.compile(r'<TARGET name="([^"]+)"')
_ITEM = re.compile(r"<ITEM>(.*?)</ITEM>", re.S)


def node_of(request: LLMRequest) -> str:
    found = _NODE.search(request.prompt)
    assert found is not None, request.prompt
    return found.group(1)


def targets_of(request: LLMRequest) -> list[str]:
    return _TARGET.findall(request.prompt)


def items_of(request: LLMRequest) -> list[str]:
    return _ITEM.findall(request.prompt)


def tagging_critic(request: LLMRequest) -> str:
    node = node_of(request)
    heard = " | ".join(items_of(request))
    return "".join(
        f'<CRITIQUE target="{target}">[{node}->{target}] heard: {heard}</CRITIQUE>'
        for target in targets_of(request)
    )


def critic_calls(requests: list[LLMRequest], node: str) -> list[LLMRequest]:
    """The critic requests about ``node``."""
    return [request for request in requests if node_of(request) == node]


def param(value: str, description: str, trainable: bool = True) -> dict[str, Any]:
    return {"value": value, "description": description, "trainable": trainable}


def llm(node_id: str, system: str, prompt: str) -> dict[str, Any]:
    return {"id": node_id, "op": "llm", "alias": "task", "system": system, "prompt": prompt}


LINEAR = {
    "name": "linear",
    "inputs": {"question": {}},
    "parameters": {"p1": param("Draft.", "how to draft"), "p2": param("Finish.", "how to end")},
    "nodes": [
        llm("draft", "{p1}", "{question}"),
        {"id": "wrap", "op": "template", "text": "Draft: {draft}"},
        llm("final", "{p2}", "{wrap}"),
    ],
    "outputs": {"answer": "final"},
}


async def forward(target: Any, inputs: Any, resources: Any) -> ForwardRecord:
    record = await run(target, inputs, resources=resources, record=True)
    assert isinstance(record, ForwardRecord)
    return record
