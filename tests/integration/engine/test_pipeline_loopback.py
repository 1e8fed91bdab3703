"""A traced pipeline over real HTTP: every prompt the server sees holds its upstream outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from app.engine import (
    ForwardRecord,
    InferenceModule,
    LLMInference,
    Parameter,
    branch,
    canonical_json,
    graph_hash,
    parse_json,
    run,
    to_data,
    trace,
)
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM


class Extract(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.llm = LLMInference("fast", system_prompt="Extract the facts.")

    def forward(self, doc: str) -> Any:
        return self.llm("Document:\n" + doc)


class Analyzer(InferenceModule):
    """f-string, +, str(), a nested module, indexing into parse_json, and a branch."""

    def __init__(self) -> None:
        super().__init__()
        self.extract = Extract()
        self.judge = LLMInference("fast", system_prompt="JUDGE: reply with JSON.")
        self.style = Parameter("Be terse.", description="comparison style")
        self.compare = LLMInference("smart", system_prompt=self.style)
        self.detail = LLMInference("smart", system_prompt="Expand.")
        self.brief = LLMInference("fast", system_prompt="Shorten.")

    def forward(self, doc1: str, doc2: str) -> Any:
        facts1, facts2 = self.extract(doc1), self.extract(doc2)
        verdict = parse_json(self.judge(str(facts1)))
        comparison = self.compare(
            f"Compare {facts1} with {facts2}; focus: " + str(verdict["focus"][0])
        )
        answer = branch(
            verdict["detailed"],
            lambda: self.detail(f"Expand: {comparison}"),
            lambda: self.brief(comparison),
        )
        return {"comparison": comparison, "answer": answer}


JUDGE_REPLY = {"focus": ["cost", "range"], "detailed": True}


async def test_prompts_at_the_server_contain_upstream_outputs(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    fake_llm.configure(rules=[{"match": "JUDGE:", "reply": json.dumps(JUDGE_REPLY)}])
    manager = endpoints(fast={}, smart={})
    record = await run(Analyzer(), "EV batteries", "H2 tanks", resources=manager, record=True)
    assert isinstance(record, ForwardRecord)
    out = {n: r.output for n, r in record.nodes.items()}

    prompts = {(entry["system"], entry["prompt"]) for entry in fake_llm.log()}
    expected = {
        ("Extract the facts.", "Document:\nEV batteries"),
        ("Extract the facts.", "Document:\nH2 tanks"),
        ("JUDGE: reply with JSON.", out["extract_llm"]),
        ("Be terse.", f"Compare {out['extract_llm']} with {out['extract_llm_2']}; focus: cost"),
        ("Expand.", f"Expand: {out['compare']}"),
    }
    assert prompts == expected  # "Shorten." never ran: its arm was skipped
    assert record.outputs == {"comparison": out["compare"], "answer": out["detail"]}
    for _, prompt in prompts:
        assert "\x00" not in prompt
        assert "TracedValue" not in prompt
        assert "{" not in prompt
    for upstream in ("extract_llm", "extract_llm_2"):
        assert out[upstream].startswith("reply[")  # the fake server's own answer reached downstream


def test_graph_round_trips_through_json_in_another_process() -> None:
    graph = trace(Analyzer())
    text = json.dumps(to_data(graph))
    script = (
        "import json, sys\n"
        "from app.engine import load_graph, canonical_json, graph_hash, trace\n"
        "from tests.integration.engine.test_pipeline_loopback import Analyzer\n"
        "loaded = load_graph(sys.stdin.read())\n"
        "hashes = [graph_hash(loaded), graph_hash(trace(Analyzer()))]\n"
        "print(json.dumps([canonical_json(loaded), *hashes]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    canonical, loaded_hash, retraced_hash = json.loads(result.stdout)
    assert canonical == canonical_json(graph)
    assert loaded_hash == retraced_hash == graph_hash(graph)
