"""Graph documents tests share: one-call echo, an output bomb and a one-pattern classifier."""

from __future__ import annotations

from typing import Any

# One LLM call that answers its input, on the fake server's "fast" alias.
ECHO_GRAPH: dict[str, Any] = {
    "name": "echo",
    "inputs": {"text": {"type": "string"}},
    "nodes": [
        {"id": "answer", "op": "llm", "alias": "fast", "system": "Echo.", "prompt": "{text}"}
    ],
    "outputs": {"answer": "answer"},
}


def bomb_graph(depth: int = 21) -> dict[str, Any]:
    """``t0 = {x}{x}`` and ``t{i} = {t{i-1}}{t{i-1}}``: each node doubles the text, so 21 nodes
    on a 1 KiB input would end at 2 GiB."""
    nodes = [{"id": "t0", "op": "template", "text": "{x}{x}"}]
    nodes += [
        {"id": f"t{i}", "op": "template", "text": f"{{t{i - 1}}}{{t{i - 1}}}"}
        for i in range(1, depth)
    ]
    return {
        "name": "bomb",
        "inputs": {"x": {"type": "string"}},
        "nodes": nodes,
        "outputs": {"out": nodes[-1]["id"]},
    }


def classify_graph(pattern: str, name: str = "triage") -> dict[str, Any]:
    """One ``classify`` node on input ``text``: label ``evil`` for ``pattern``, else ``fine``."""
    node = {
        "id": "kind",
        "op": "classify",
        "source": "text",
        "labels": {"evil": pattern},
        "default": "fine",
    }
    return {
        "name": name,
        "inputs": {"text": {"type": "string"}},
        "nodes": [node],
        "outputs": {"kind": "kind"},
    }


# Two chained LLM calls: a parameter in the first's system text, the input in both, the
# first's answer in the second's prompt (after a chat message).
TWO_CALLS_GRAPH: dict[str, Any] = {
    "name": "two-calls",
    "inputs": {"text": {"type": "string"}},
    "parameters": {"style": {"value": "Answer in one line."}},
    "nodes": [
        {
            "id": "draft",
            "op": "llm",
            "alias": "fast",
            "system": "{style}",
            "prompt": "Draft: {text}",
        },
        {
            "id": "polish",
            "op": "llm",
            "alias": "smart",
            "system": "Polish the draft.",
            "messages": [{"role": "user", "content": "The topic was {text}."}],
            "prompt": "Improve: {draft}",
        },
    ],
    "outputs": {"final": "polish"},
}
