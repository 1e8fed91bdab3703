"""Optimization: losses, textual feedback flowing backward through a recorded graph, and
optimizers that rewrite :class:`~app.engine.Parameter` text under a budget.

See ``docs/optimization.md``; the prompt contract of the critic, optimizer and judge is in
:mod:`app.engine.optimization.prompts`.
"""

from app.engine.optimization.budget import Budget, BudgetExhausted, Limits, Meter, Usage
from app.engine.optimization.roles import Role

__all__ = ["Budget", "BudgetExhausted", "Limits", "Meter", "Role", "Usage"]
