"""Who a model call of an optimization run is for: the role every budget and counter is kept by.

>>> Role("backward") is Role.BACKWARD
True
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    TASK = "task"  # the pipeline's own calls on training items
    JUDGE = "judge"  # an LLMJudge grading an output
    BACKWARD = "backward"  # the critic writing feedback in the backward pass
    OPTIMIZER = "optimizer"  # the optimizer rewriting a parameter
    VALIDATION = "validation"  # the pipeline's calls scoring a proposal on validation items
