"""Optimization: losses, textual feedback flowing backward through a recorded graph, and
optimizers that rewrite :class:`~app.engine.Parameter` text under a budget.

See ``docs/optimization.md``; the prompt contract of the critic, optimizer and judge is in
:mod:`app.engine.optimization.prompts`.
"""

from app.engine.optimization.backward import BackwardResult
from app.engine.optimization.budget import Budget, BudgetExhausted, Limits, Meter, Usage
from app.engine.optimization.calls import Reply, ask, ask_parsed, current_meter, metering
from app.engine.optimization.dataset import Example
from app.engine.optimization.edits import edit_ratio
from app.engine.optimization.evaluate import EvalResult, evaluate
from app.engine.optimization.feedback import Feedback
from app.engine.optimization.history import StepRecord, StopReason, TrainingEvent, TrainingHistory
from app.engine.optimization.losses import CompositeLoss, LLMJudge, Loss, VerifierLoss
from app.engine.optimization.optimizer import Optimizer, Proposal, graph_parameters
from app.engine.optimization.roles import Role
from app.engine.optimization.sfa import SFAOptimizer
from app.engine.optimization.state import TrainerState
from app.engine.optimization.stats import bootstrap_interval, mean, paired
from app.engine.optimization.train import train
from app.engine.optimization.trainer import Schedule, Trainer
from app.engine.optimization.verifiers import Verdict, verifier, verifier_names

__all__ = [
    "BackwardResult",
    "Budget",
    "BudgetExhausted",
    "CompositeLoss",
    "EvalResult",
    "Example",
    "Feedback",
    "LLMJudge",
    "Limits",
    "Loss",
    "Meter",
    "Optimizer",
    "Proposal",
    "Reply",
    "Role",
    "SFAOptimizer",
    "Schedule",
    "StepRecord",
    "StopReason",
    "Trainer",
    "TrainerState",
    "TrainingEvent",
    "TrainingHistory",
    "Usage",
    "Verdict",
    "VerifierLoss",
    "ask",
    "ask_parsed",
    "bootstrap_interval",
    "current_meter",
    "edit_ratio",
    "evaluate",
    "graph_parameters",
    "mean",
    "metering",
    "paired",
    "train",
    "verifier",
    "verifier_names",
]
