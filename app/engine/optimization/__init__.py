"""Optimization: losses, textual feedback flowing backward through a recorded graph, and
optimizers that rewrite :class:`~app.engine.Parameter` text under a budget.

See ``docs/optimization.md``; the prompt contract of the critic, optimizer and judge is in
:mod:`app.engine.optimization.prompts`.
"""

from app.engine.optimization.backward import BackwardResult
from app.engine.optimization.budget import Budget, BudgetExhausted, Limits, Meter, Usage
from app.engine.optimization.calls import Reply, ask, ask_parsed, current_meter, metering
from app.engine.optimization.feedback import Feedback
from app.engine.optimization.losses import CompositeLoss, LLMJudge, Loss, VerifierLoss
from app.engine.optimization.roles import Role
from app.engine.optimization.verifiers import Verdict, verifier, verifier_names

__all__ = [
    "BackwardResult",
    "Budget",
    "BudgetExhausted",
    "CompositeLoss",
    "Feedback",
    "LLMJudge",
    "Limits",
    "Loss",
    "Meter",
    "Reply",
    "Role",
    "Usage",
    "Verdict",
    "VerifierLoss",
    "ask",
    "ask_parsed",
    "current_meter",
    "metering",
    "verifier",
    "verifier_names",
]
