"""The engine loss a request's :class:`LossSpec` describes: verifier ops of the engine's closed
registry, an LLM judge, and their weights. An uploaded spec never names code to run.

>>> loss = loss_of(LossSpec.model_validate({"verifiers": [{"op": "exact"}]}))
>>> type(loss).__name__
'VerifierLoss'
"""

from __future__ import annotations

from app.engine.optimization.losses import CompositeLoss, LLMJudge, Loss, VerifierLoss
from app.engine.optimization.verifiers import verifier
from app.engine.resources.manager import ResourceManager
from app.services.optimization.spec import LossSpec


def loss_of(spec: LossSpec, resources: ResourceManager | None = None) -> Loss:
    """One term as itself, several as a :class:`CompositeLoss` of their weights; the judge
    calls its alias under ``resources`` (default: those of the forward pass it grades)."""
    terms: list[tuple[Loss, float]] = [
        (VerifierLoss(verifier(term.op, **term.params)), term.weight) for term in spec.verifiers
    ]
    if spec.judge is not None:
        judge = LLMJudge(spec.judge.alias, spec.judge.rubric, resources=resources)
        terms.append((judge, spec.judge.weight))
    if len(terms) == 1:
        return terms[0][0]
    return CompositeLoss(terms)
