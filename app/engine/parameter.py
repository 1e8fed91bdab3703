"""Learnable text values (prompts, instructions) owned by modules."""

from __future__ import annotations

import itertools
from typing import Any

from app.engine.errors import ConfigError
from app.engine.records import FeedbackItem
from app.engine.tracing.context import REPR_MARK, current_tracer

_versions = itertools.count(1)


class Parameter:
    """A piece of text the optimizer may rewrite.

    >>> style = Parameter("Be brief.", description="Tone of the answer")
    >>> f"{style}"
    'Be brief.'
    """

    def __init__(self, value: str, description: str = "", requires_grad: bool = True) -> None:
        if not isinstance(value, str):
            raise ConfigError(f"Parameter value must be str, got {type(value).__name__}")
        if requires_grad and not description:
            raise ConfigError("a learnable Parameter needs a description (what the text is for)")
        self._value = value
        self.description = description
        self.requires_grad = requires_grad
        self.version = next(_versions)
        self.feedback: list[FeedbackItem] = []  # gathered by backward(), cleared by zero_feedback()

    @property
    def value(self) -> str:
        return self._value

    @value.setter
    def value(self, value: str) -> None:
        if not isinstance(value, str):
            raise ConfigError(f"Parameter value must be str, got {type(value).__name__}")
        self._value = value
        self.version = next(_versions)

    def __str__(self) -> str:
        tracer = current_tracer()
        return tracer.parameter_marker(self) if tracer else self._value

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __add__(self, other: Any) -> str:
        return str(self) + str(other)

    def __radd__(self, other: Any) -> str:
        return str(other) + str(self)

    def __repr__(self) -> str:
        if current_tracer() is not None:  # the text must not be frozen into the graph
            return f"{REPR_MARK}Parameter({self.description!r})\x01"
        flag = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter({self._value!r}{flag})"
