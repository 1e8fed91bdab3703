"""The closed registry of named verifier ops a loss spec may name (uploaded specs never run code).

``verifier(name, **params)`` returns ``fn(output, expected) -> Verdict``. ``output`` is what
the forward pass returned; when it is a dict (a graph's outputs), param ``output`` names the
key to check, and without it the only key is checked. Non-text values are checked as JSON
text. The feedback texts are part of the optimization contract: the offline
simulator's critic reads them.

>>> check = verifier("answer_equals")
>>> check({"answer": "Work it out.\\nAnswer: 42"}, 42).text
"The final answer '42' is correct."
>>> check("no idea", "42").text
"The output has no final 'Answer:' line; the expected answer is '42'."
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.errors import ConfigError
from app.engine.graph.patterns import PatternError, compile_pattern
from app.engine.optimization.prompts import shown

MAX_PATTERN_LENGTH = 1_000
_ANSWER = re.compile(r"Answer:\s*(.+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verifier's judgement: ``score`` in [0, 1] and the feedback text for the critic."""

    score: float
    text: str


Check = Callable[[Any, Any], Verdict]


def verifier(name: str, **params: Any) -> Check:
    """The verifier op ``name`` with ``params`` (``ConfigError`` for an unknown op or param)."""
    factory = _OPS.get(name)
    if factory is None:
        raise ConfigError(f"unknown verifier {name!r}; known: {', '.join(sorted(_OPS))}")
    key = params.pop("output", None)
    if key is not None and not isinstance(key, str):
        raise ConfigError("verifier param 'output' must be the name of a graph output")
    check = factory(params)
    return lambda output, expected: check(selected(output, key), expected)


def verifier_names() -> list[str]:
    """The ops :func:`verifier` knows, sorted."""
    return sorted(_OPS)


def selected(output: Any, key: str | None) -> Any:
    """The checked value: output ``key`` of a dict of outputs, the only one, or ``output``."""
    if not isinstance(output, Mapping):
        if key is not None:
            raise ConfigError(f"verifier names output {key!r} but the pipeline returned one value")
        return output
    if key is not None:
        if key not in output:
            raise ConfigError(f"verifier names output {key!r}; outputs: {', '.join(output)}")
        return output[key]
    if len(output) != 1:
        raise ConfigError(
            f"the pipeline has outputs {', '.join(output)}: name one with the verifier's 'output'"
        )
    return next(iter(output.values()))


def _no_params(op: str, params: Mapping[str, Any], allowed: frozenset[str] = frozenset()) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"verifier {op!r} has no param {unknown[0]!r}")


def _answer_equals(params: Mapping[str, Any]) -> Check:
    _no_params("answer_equals", params)
    return answer_equals


def answer_equals(output: Any, expected: Any) -> Verdict:
    """The last ``Answer:`` line of the output, compared case-insensitively to ``expected``."""
    expected = str(expected)
    answers = _ANSWER.findall(shown(output))
    if not answers:
        return Verdict(
            0.0, f"The output has no final 'Answer:' line; the expected answer is {expected!r}."
        )
    got = answers[-1].strip()
    if got.casefold() == expected.strip().casefold():
        return Verdict(1.0, f"The final answer {got!r} is correct.")
    return Verdict(0.0, f"The final answer was {got!r}; the expected answer is {expected!r}.")


def _exact(params: Mapping[str, Any]) -> Check:
    _no_params("exact", params)
    return exact


def exact(output: Any, expected: Any) -> Verdict:
    """The output text, stripped, equals ``expected``."""
    expected = str(expected)
    got = shown(output).strip()
    if got == expected:
        return Verdict(1.0, f"The output {got!r} is exactly the expected answer.")
    return Verdict(0.0, f"The output was {got!r}; the expected answer is {expected!r}.")


def _contains(params: Mapping[str, Any]) -> Check:
    _no_params("contains", params)
    return contains


def contains(output: Any, expected: Any) -> Verdict:
    """The output text contains ``expected``."""
    expected = str(expected)
    if expected in shown(output):
        return Verdict(1.0, f"The output contains the expected answer {expected!r}.")
    return Verdict(
        0.0,
        f"The output does not contain the expected answer; the expected answer is {expected!r}.",
    )


def _regex(params: Mapping[str, Any]) -> Check:
    _no_params("regex", params, frozenset({"pattern"}))
    pattern = params.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError("verifier 'regex' needs param 'pattern' (an RE2 pattern)")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ConfigError(f"verifier 'regex' pattern is over {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = compile_pattern(pattern)
    except PatternError as exc:
        raise ConfigError(f"verifier 'regex' pattern: {exc}") from None

    def check(output: Any, expected: Any) -> Verdict:
        if compiled.search(shown(output)) is not None:
            return Verdict(1.0, f"The output matches the pattern {pattern!r}.")
        return Verdict(
            0.0,
            f"The output does not match the pattern {pattern!r}; "
            f"the expected answer is {str(expected)!r}.",
        )

    return check


def _json_equals(params: Mapping[str, Any]) -> Check:
    _no_params("json_equals", params)
    return json_equals


def json_equals(output: Any, expected: Any) -> Verdict:
    """The output, read as JSON, equals ``expected`` (key order does not matter; an expected
    string is read as JSON when it is JSON text)."""
    want = _canonical(_maybe_json(expected))
    try:
        got = _canonical(json.loads(output) if isinstance(output, str) else output)
    except ValueError:
        return Verdict(0.0, f"The output is not valid JSON; the expected answer is {want!r}.")
    if got == want:
        return Verdict(1.0, f"The output {got!r} is the expected JSON.")
    return Verdict(0.0, f"The output was {got!r}; the expected answer is {want!r}.")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value  # a plain string is compared as a JSON string
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


_OPS: dict[str, Callable[[Mapping[str, Any]], Check]] = {
    "answer_equals": _answer_equals,
    "exact": _exact,
    "contains": _contains,
    "regex": _regex,
    "json_equals": _json_equals,
}
