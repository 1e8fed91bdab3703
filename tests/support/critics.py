"""Scripted model replies for the optimizer's roles (they stand for external models).

``tagging_critic`` answers a critic request with one CRITIQUE block per target, tagged
``[NODE->TARGET]`` and quoting every feedback item it was sent, so a test can follow which
node's text reached which target.
"""

from __future__ import annotations

import re

from app.engine.llm import LLMRequest

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
