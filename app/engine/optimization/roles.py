"""Who a model call of an optimization run is for: the role every budget and counter is kept by.

>>> Role("backward") is Role.BACKWARD
True

The calls made inside ``with calling_for(role):`` are that role's (the innermost block wins),
so whoever observes them (a tracing backend's span hooks) can tell a critic's call from a
forward pass's:

>>> with calling_for(Role.TASK):
...     with calling_for(Role.JUDGE):
...         current_role()
<Role.JUDGE: 'judge'>
>>> current_role() is None
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum


class Role(StrEnum):
    TASK = "task"  # the pipeline's own calls on training items
    JUDGE = "judge"  # an LLMJudge grading an output
    BACKWARD = "backward"  # the critic writing feedback in the backward pass
    OPTIMIZER = "optimizer"  # the optimizer rewriting a parameter
    VALIDATION = "validation"  # the pipeline's calls scoring a proposal on validation items


_role: ContextVar[Role | None] = ContextVar("inf_optimization_role", default=None)


@contextmanager
def calling_for(role: Role) -> Iterator[Role]:
    """Mark the model calls made inside the block (and in tasks it starts) as ``role``'s."""
    token = _role.set(role)
    try:
        yield role
    finally:
        _role.reset(token)


def current_role() -> Role | None:
    """The role of the innermost :func:`calling_for` block, or ``None`` outside any."""
    return _role.get()
