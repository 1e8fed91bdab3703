"""The backward pass over real HTTP: the critic is an endpoint of the same resource manager
(its retries apply), and the meter counts the tokens the server reported."""

from __future__ import annotations

from app.engine import load_graph
from app.engine.optimization import Meter, Role, VerifierLoss, metering, verifier
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM
from tests.support.optimization import LINEAR, forward

FINAL_CRITIQUE = (
    '<CRITIQUE target="p2">End with a line "Answer: <number>".</CRITIQUE>'
    '<CRITIQUE target="draft">The draft gives no number.</CRITIQUE>'
)
DRAFT_CRITIQUE = '<CRITIQUE target="p1">Work the product out step by step.</CRITIQUE>'


async def test_feedback_flows_back_through_critic_calls_at_the_server(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    fake_llm.configure(
        rules=[
            {"match": '<NODE id="final">', "status": 503, "times": 1},
            {"match": '<NODE id="final">', "reply": FINAL_CRITIQUE},
            {"match": '<NODE id="draft">', "reply": DRAFT_CRITIQUE},
        ]
    )
    manager = endpoints(task={}, critic={"max_retries": 2})
    record = await forward(load_graph(LINEAR), {"question": "6*7?"}, manager)
    feedback = await VerifierLoss(verifier("answer_equals"))(record, "42", example=0)
    meter = Meter()

    with metering(meter):
        result = await feedback.backward()

    assert feedback.text.startswith("The output has no final 'Answer:' line")
    assert [item.text for item in result.parameters["p2"]] == [
        'End with a line "Answer: <number>".'
    ]
    (on_p1,) = result.parameters["p1"]
    assert (on_p1.text, on_p1.node, on_p1.example) == (
        "Work the product out step by step.",
        "draft",
        0,
    )
    (draft_request,) = [e for e in fake_llm.log() if '<NODE id="draft">' in e["prompt"]]
    assert "<ITEM>The draft gives no number.</ITEM>" in draft_request["prompt"]
    assert (result.calls, result.unparsed, result.errors) == (2, 0, [])
    final_log = [e for e in fake_llm.log() if '<NODE id="final">' in e["prompt"]]
    assert [entry["status"] for entry in final_log] == [503, 200]  # retried by the manager
    spent = meter.by_role[Role.BACKWARD]
    assert spent.calls == 2
    assert spent.input_tokens > 0
    assert spent.output_tokens > 0
