"""Losses: a score in [0, 1] and feedback text on one recorded forward pass.

A loss scores a forward pass that finished; a failed forward pass (``ExecutionError``) is
the trainer's to score, not the loss's.

>>> import asyncio
>>> from app.engine.records import ForwardRecord
>>> from app.engine.optimization.verifiers import verifier
>>> record = ForwardRecord(None, {}, {"answer": "Answer: 7"}, {}, [])
>>> loss = VerifierLoss(verifier("answer_equals"))
>>> asyncio.run(loss(record, "7")).score
1.0
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from app.engine.errors import ConfigError, MalformedResponseError
from app.engine.optimization.calls import Resources, ask_parsed
from app.engine.optimization.feedback import Feedback
from app.engine.optimization.prompts import JUDGE_SYSTEM, judge_request, parse_score, shown
from app.engine.optimization.roles import Role
from app.engine.optimization.verifiers import Verdict
from app.engine.records import ForwardRecord

Example = int | str | None
VerifierResult = bool | float | tuple[float, str] | Verdict
VerifierFn = Callable[[Any, Any], VerifierResult]


class Loss(ABC):
    """Scores one forward pass against the expected answer; subclasses implement ``score``."""

    async def __call__(
        self, record: ForwardRecord, expected: Any, *, example: Example = None
    ) -> Feedback:
        score, text = await self.score(record, expected)
        return Feedback(score, text, record, example)

    @abstractmethod
    async def score(self, record: ForwardRecord, expected: Any) -> tuple[float, str]:
        """``(score in [0, 1], feedback text)`` for ``record``."""


class VerifierLoss(Loss):
    """A loss from a plain check ``fn(output, expected)`` of the forward pass's outputs.

    ``fn`` may return a bool, a float score, ``(score, text)`` or a :class:`Verdict`.
    """

    def __init__(self, fn: VerifierFn) -> None:
        self.fn = fn

    async def score(self, record: ForwardRecord, expected: Any) -> tuple[float, str]:
        return verdict_of(self.fn(record.outputs, expected), record.outputs, expected)


def verdict_of(result: VerifierResult, output: Any, expected: Any) -> tuple[float, str]:
    """A verifier's result as ``(score clamped to [0, 1], text)``."""
    if isinstance(result, Verdict):
        return _clamped(result.score), result.text
    if isinstance(result, tuple):
        return _clamped(float(result[0])), str(result[1])
    if isinstance(result, bool):
        if result:
            return 1.0, "The output is correct."
        return (
            0.0,
            f"The output {shown(output)!r} is wrong; the expected answer is {shown(expected)!r}.",
        )
    score = _clamped(float(result))
    return score, f"The output scored {score:.2f}; the expected answer is {shown(expected)!r}."


def _clamped(score: float) -> float:
    return min(1.0, max(0.0, score))


class LLMJudge(Loss):
    """A model (endpoint ``alias``, role JUDGE) grades the output against ``rubric``.

    Unparseable replies are asked again (``attempts`` requests in all); if none parses it
    raises ``MalformedResponseError``, and a failed call raises ``ExecutionError``.
    ``resources`` defaults to the ones the forward pass used.
    """

    def __init__(
        self, alias: str, rubric: str, *, resources: Resources = None, attempts: int = 3,
        use_expected: bool = True,
    ) -> None:  # fmt: skip
        self.alias = alias
        self.rubric = rubric
        self.resources = resources
        self.attempts = attempts
        self.use_expected = use_expected

    async def score(self, record: ForwardRecord, expected: Any) -> tuple[float, str]:
        has_expected = self.use_expected and expected is not None
        request = judge_request(
            self.rubric, record.inputs, record.outputs, expected, has_expected=has_expected
        )
        parsed, reply = await ask_parsed(
            self.alias, JUDGE_SYSTEM, request, parse_score, role=Role.JUDGE,
            resources=self.resources or record.resources, attempts=self.attempts,
        )  # fmt: skip
        if parsed is None:
            raise MalformedResponseError(
                f"judge {self.alias!r} gave no <SCORE> in {reply.attempts} replies"
            )
        return parsed


class CompositeLoss(Loss):
    """Several losses, weighted: the weighted mean score, the texts joined (in order).

    >>> CompositeLoss([(VerifierLoss(lambda out, exp: True), 0)])
    Traceback (most recent call last):
    ...
    app.engine.errors.ConfigError: CompositeLoss weights must be positive, got 0
    """

    def __init__(self, parts: Sequence[tuple[Loss, float]]) -> None:
        if not parts:
            raise ConfigError("CompositeLoss needs at least one (loss, weight)")
        for _, weight in parts:
            if not weight > 0:
                raise ConfigError(f"CompositeLoss weights must be positive, got {weight}")
        self.parts = list(parts)

    async def score(self, record: ForwardRecord, expected: Any) -> tuple[float, str]:
        scored = [(await loss.score(record, expected), weight) for loss, weight in self.parts]
        total = sum(weight for _, weight in self.parts)
        score = sum(part[0] * weight for part, weight in scored) / total
        return score, "\n".join(part[1] for part, _ in scored if part[1])
