"""Patterns of ``classify`` nodes: RE2, so matching time is linear in the text, never exponential.

Backtracking engines (Python's ``re``) take exponential time on patterns such as ``(a+)+$``;
RE2 has no backtracking and refuses the features that need it (backreferences, lookaround).
Each pattern is compiled once and shared by every plan and eager ``classify`` call using it.
Linear is not free: a hostile pattern can make RE2 spend about a microsecond per byte of text
(measured: 1.2 s on 1 MiB), so texts are bounded by the node output limit, labels per node by
the schema, programs by ``MAX_PROGRAM_SIZE``, and long texts are matched off the event loop.

>>> Classifier({"question": r"\\?$"}, "statement")("Is it raining?")
'question'
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import re2  # type: ignore[import-untyped]

from app.engine.graph.refs import to_text

MAX_PROGRAM_SIZE = 5_000  # RE2 instructions; a 200-word alternation needs about 1,900
_MAX_MEM = 1 << 20  # RE2's budget per pattern (compiled program and match cache), in bytes


class PatternError(ValueError):
    """A pattern RE2 cannot compile, or one too complex to run within the limits."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The compiled, case-insensitive RE2 pattern (``PatternError`` if it cannot be used)."""
    options = re2.Options()
    options.case_sensitive = False
    options.never_capture = True
    options.log_errors = False
    options.max_mem = _MAX_MEM
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        raise PatternError(_reason(exc)) from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise PatternError(
            f"pattern too complex: {compiled.programsize:,} instructions, "
            f"over the limit of {MAX_PROGRAM_SIZE:,}"
        )
    return compiled


def _reason(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if "too large" in text:
        return f"pattern too complex: {text}"
    return f"{text} (patterns use RE2 syntax: no backreferences or lookaround)"


class LabelPatternError(PatternError):
    """A label's pattern cannot be used; ``label`` names it."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(reason)
        self.label = label


class Classifier:
    """Labels in order with compiled patterns: the first label whose pattern matches wins."""

    __slots__ = ("_patterns", "default", "weight")

    def __init__(self, labels: Mapping[str, str], default: str) -> None:
        self._patterns = tuple((label, _compile_label(label, p)) for label, p in labels.items())
        self.default = default
        # Matching costs at most about program size times text length (RE2 is linear in both).
        self.weight: int = sum(pattern.programsize for _, pattern in self._patterns)

    def label_of(self, value: Any) -> str:
        """The label of any value, matched on its text as templates render it (strings as
        they are, ``None`` as nothing, anything else as JSON): how a ``classify`` node sees
        its source, and so how eager ``classify()`` sees its argument."""
        return self(to_text(value))

    def __call__(self, text: str) -> str:
        data = text.encode("utf-8", "surrogatepass")  # once, not once per label
        for label, pattern in self._patterns:
            if pattern.search(data) is not None:
                return label
        return self.default


def _compile_label(label: str, pattern: str) -> Any:
    try:
        return compile_pattern(pattern)
    except PatternError as exc:
        raise LabelPatternError(label, str(exc)) from None
