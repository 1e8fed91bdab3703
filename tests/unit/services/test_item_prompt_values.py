"""Rendering an item's prompts again from stored values: which nodes show one, and a value
that was not stored is said, not guessed."""

from __future__ import annotations

from app.engine import load_graph
from app.engine.execution.plan import Plan
from app.services.requests.item_prompts import rendered_prompts
from tests.support.graphs import TWO_CALLS_GRAPH

PLAN = Plan(load_graph(TWO_CALLS_GRAPH))


def test_a_node_that_never_called_its_model_shows_no_prompt() -> None:
    outputs = {"draft": ("succeeded", "d"), "polish": ("cancelled", None)}
    shown = rendered_prompts(PLAN, {"text": "owls"}, outputs)
    assert list(shown) == ["draft"]
    assert [(m.role, m.content) for m in shown["draft"].messages] == [
        ("system", "Answer in one line."),
        ("user", "Draft: owls"),
    ]


def test_a_failed_node_shows_the_prompt_it_sent() -> None:
    outputs = {"draft": ("succeeded", "d"), "polish": ("failed", None)}
    polish = rendered_prompts(PLAN, {"text": "owls"}, outputs)["polish"]
    assert (polish.error, polish.messages[-1].content) == (None, "Improve: d")


def test_a_value_not_stored_is_named_instead_of_a_wrong_prompt() -> None:
    outputs = {"draft": ("failed", None), "polish": ("failed", None)}
    polish = rendered_prompts(PLAN, {"text": "owls"}, outputs)["polish"]
    assert polish.messages == []
    assert polish.error is not None
    assert "draft" in polish.error
