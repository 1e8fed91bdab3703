"""Module registration, introspection and state (PyTorch habits)."""

from __future__ import annotations

import pytest

from app.engine import ConfigError, InferenceModule, LLMInference, Parameter


class Extractor(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.instructions = Parameter("List the facts.", description="extraction instructions")
        self.llm = LLMInference("fast", system_prompt=self.instructions)

    def forward(self, text: str) -> object:
        return self.llm(text)


class Pipeline(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.left = Extractor()
        self.right = self.left  # shared: counted once
        self.style = Parameter("Be brief.", description="comparison style")
        self.compare = LLMInference("smart", system_prompt=self.style)

    def forward(self, a: str, b: str) -> object:
        return self.compare(f"{self.left(a)} vs {self.right(b)}")


def test_assignment_registers_children_and_parameters() -> None:
    pipeline = Pipeline()
    assert [name for name, _ in pipeline.named_children()] == ["left", "right", "compare"]
    assert [name for name, _ in pipeline.named_modules()] == ["", "left", "left.llm", "compare"]
    assert [name for name, _ in pipeline.named_parameters()] == ["style", "left.instructions"]
    assert len(list(pipeline.parameters())) == 2


def test_reassignment_and_deletion_update_registries() -> None:
    pipeline = Pipeline()
    pipeline.style = "plain text"  # no longer a parameter
    assert "style" not in dict(pipeline.named_parameters())
    del pipeline.compare
    assert "compare" not in dict(pipeline.named_children())


def test_state_dict_round_trip() -> None:
    pipeline = Pipeline()
    state = pipeline.state_dict()
    assert state == {"style": "Be brief.", "left.instructions": "List the facts."}
    other = Pipeline()
    other.load_state_dict({**state, "style": "Be thorough."})
    assert other.style.value == "Be thorough."


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"left.instructions": "x", "style": "y", "nope": "z"}, "unknown parameter 'nope'"),
        ({"left.instructions": 3, "style": "y"}, "must be str, got int"),
        ({"style": "y"}, "missing parameter 'left.instructions'"),
    ],
)
def test_load_state_dict_rejects_bad_state(state: dict[str, object], message: str) -> None:
    pipeline = Pipeline()
    with pytest.raises(ConfigError, match=message):
        pipeline.load_state_dict(state)
    assert pipeline.style.value == "Be brief."  # nothing applied on error


def test_load_state_dict_non_strict_allows_missing() -> None:
    pipeline = Pipeline()
    pipeline.load_state_dict({"style": "y"}, strict=False)
    assert pipeline.state_dict()["style"] == "y"


def test_train_eval_and_requires_grad() -> None:
    pipeline = Pipeline()
    assert pipeline.eval() is pipeline
    assert not any(m.training for m in pipeline.modules())
    pipeline.train()
    assert all(m.training for m in pipeline.modules())
    pipeline.requires_grad_(False)
    assert not any(p.requires_grad for p in pipeline.parameters())


def test_learnable_parameter_needs_description_and_text() -> None:
    with pytest.raises(ConfigError, match="description"):
        Parameter("x")
    with pytest.raises(ConfigError, match="must be str"):
        Parameter(3, description="d")  # type: ignore[arg-type]
    assert Parameter("x", requires_grad=False).value == "x"


def test_parameter_formats_as_its_value_outside_tracing() -> None:
    style = Parameter("Be brief.", description="style")
    assert f"[{style}]" == "[Be brief.]"
    assert style + "!" == "Be brief.!"


def test_subclass_must_call_super_init() -> None:
    class Broken(InferenceModule):
        def __init__(self) -> None:
            self.x = 1

    with pytest.raises(ConfigError, match="super"):
        Broken()


def test_bind_returns_self() -> None:
    pipeline = Pipeline()
    assert pipeline.bind(None, max_retries=1) is pipeline
