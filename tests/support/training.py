"""A small scripted world for training tests: a one-rule task, a critic, an optimizer.

The task model answers item ``i`` with ``Answer: i`` when it may, and wrong otherwise:
even items are always right, odd items only when the system prompt mentions ``digits``,
and every item is wrong when it says ``HASTE`` (a harmful instruction); item 7 is always
wrong (a floor no prompt fixes). So on items 100-109 the seed prompt scores 50%, a prompt
with the rule 100%, and one with the harm 0%. The critic turns a
wrong-answer feedback into "Write the answer in digits."; the optimizer appends what it is
told (or a scripted text). They stand for external models; nothing of the engine is faked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.engine import InferenceModule, LLMInference, Parameter
from app.engine.llm import LLMRequest
from app.engine.optimization.dataset import Example
from app.engine.optimization.losses import VerifierLoss
from app.engine.optimization.verifiers import verifier
from app.engine.resources.manager import ResourceManager
from app.engine.testing import ScriptedLLM, scripted_manager

SEED_PROMPT = "Count the items."
RULE = "Write numbers as digits."
HARM = "HASTE: answer before reading."
_ITEM = re.compile(r"item (\d+)")
_VALUE = re.compile(r"<VALUE>\n(.*?)\n</VALUE>", re.S)
_FEEDBACK_ITEM = re.compile(r"<ITEM[^>]*>(.*?)</ITEM>", re.S)


class Counter(InferenceModule):
    """One llm node whose system prompt is the trainable ``instruction``."""

    def __init__(self, instruction: str = SEED_PROMPT) -> None:
        super().__init__()
        self.instruction = Parameter(instruction, description="how to count and answer")
        self.llm = LLMInference("task", system_prompt=self.instruction)

    def forward(self, question: str) -> Any:
        return self.llm(question)


def examples(n: int, start: int = 0) -> list[Example]:
    return [Example(f"How many? item {i}", str(i), i) for i in range(start, start + n)]


def task_reply(request: LLMRequest) -> str:
    found = _ITEM.search(request.prompt)
    assert found is not None, request.prompt
    i = int(found.group(1))
    right = "HASTE" not in request.system and (i % 2 == 0 or "digits" in request.system)
    right = right and i != 7
    return f"Counting...\nAnswer: {i if right else 'many'}"


def critic_reply(request: LLMRequest) -> str:
    targets = re.findall(r'<TARGET name="([^"]+)"', request.prompt)
    wrong = any("is correct" not in text for text in _FEEDBACK_ITEM.findall(request.prompt))
    text = "Write the answer in digits." if wrong else "NONE"
    return "".join(f'<CRITIQUE target="{t}">{text}</CRITIQUE>' for t in targets)


def current_value(request: LLMRequest) -> str:
    found = _VALUE.search(request.prompt)
    assert found is not None, request.prompt
    return found.group(1)


def feedback_texts(request: LLMRequest) -> list[str]:
    return _FEEDBACK_ITEM.findall(request.prompt)


def adding(text: str) -> Callable[[LLMRequest], str]:
    """An optimizer that appends ``text`` to the current value (once)."""

    def reply(request: LLMRequest) -> str:
        value = current_value(request)
        new = value if text in value else f"{value} {text}"
        return f"<IMPROVED_VALUE>\n{new}\n</IMPROVED_VALUE>"

    return reply


def adding_each(*texts: str) -> Callable[[LLMRequest], str]:
    """An optimizer that appends the first of ``texts`` the current value lacks."""

    def reply(request: LLMRequest) -> str:
        value = current_value(request)
        missing = [text for text in texts if text not in value]
        new = f"{value} {missing[0]}" if missing else value
        return f"<IMPROVED_VALUE>\n{new}\n</IMPROVED_VALUE>"

    return reply


@dataclass
class World:
    """The scripted clients by alias and a resource manager serving them."""

    task: ScriptedLLM = field(default_factory=lambda: ScriptedLLM(task_reply))
    critic: ScriptedLLM = field(default_factory=lambda: ScriptedLLM(critic_reply))
    optimizer: ScriptedLLM = field(default_factory=lambda: ScriptedLLM(adding(RULE)))
    judge: ScriptedLLM = field(default_factory=lambda: ScriptedLLM(lambda r: "<SCORE>5</SCORE>"))
    price_per_million: float = 0.0

    def __post_init__(self) -> None:
        clients = {
            "task": self.task, "critic": self.critic, "optimizer": self.optimizer,
            "judge": self.judge,
        }  # fmt: skip
        self.manager: ResourceManager = scripted_manager(
            clients, max_retries=0, input_price_per_million=self.price_per_million,
            output_price_per_million=self.price_per_million,
        )  # fmt: skip

    @property
    def calls(self) -> int:
        return len(self.task.calls) + len(self.critic.calls) + len(self.optimizer.calls)


def answer_loss() -> VerifierLoss:
    return VerifierLoss(verifier("answer_equals"))
