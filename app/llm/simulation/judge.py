"""The simulated judge: a simple deterministic grade of one output against a rubric.

- With ``EXPECTED``: 10 when the output's last ``Answer:`` line equals the expected answer
  (case-insensitively), 3 when it gives a different answer, 0 when it has no answer line.
- Without: the rubric's lines (bullets removed) are its criteria; a criterion is met when at
  least half of its content words (four letters or more) occur in the output. The score is
  10 x met / criteria, rounded; the critique names the criteria not met.

>>> print(reply("<RUBRIC>Mentions the price</RUBRIC><OUTPUT>The price is 4.</OUTPUT>"))
<SCORE>10</SCORE>
<CRITIQUE>Every criterion of the rubric is met.</CRITIQUE>
"""

from __future__ import annotations

import re

from app.llm.simulation.tags import section

_ANSWER = re.compile(r"Answer:\s*(.+)", re.I)
_WORD = re.compile(r"[a-z]{4,}")
_BULLET = re.compile(r"^\s*(?:[-*•]+|\d+[.)])\s*")


def reply(request: str) -> str:
    """``<SCORE>N</SCORE><CRITIQUE>...</CRITIQUE>`` for a judge request."""
    output = section(request, "OUTPUT") or ""
    expected = section(request, "EXPECTED")
    if expected is not None:
        score, critique = against_expected(output, expected)
    else:
        score, critique = against_rubric(output, section(request, "RUBRIC") or "")
    return f"<SCORE>{score}</SCORE>\n<CRITIQUE>{critique}</CRITIQUE>"


def against_expected(output: str, expected: str) -> tuple[int, str]:
    """The grade of an output with a reference answer."""
    found = _ANSWER.findall(output)
    if not found:
        return 0, f"The output has no final 'Answer:' line; it should give {expected!r}."
    got = found[-1].strip()
    if got.lower() == expected.strip().lower():
        return 10, "The final answer matches the expected answer."
    return 3, f"The final answer {got!r} does not match the expected answer {expected!r}."


def against_rubric(output: str, rubric: str) -> tuple[int, str]:
    """The grade of an output by the share of rubric lines it meets."""
    criteria = [_BULLET.sub("", line).strip() for line in rubric.splitlines() if line.strip()]
    if not criteria:
        return 10, "The rubric states no criteria."
    missed = [c for c in criteria if not _met(c, output)]
    score = round(10 * (len(criteria) - len(missed)) / len(criteria))
    if not missed:
        return score, "Every criterion of the rubric is met."
    return score, "Not met: " + "; ".join(missed)


def _met(criterion: str, output: str) -> bool:
    words = set(_WORD.findall(criterion.lower()))
    if not words:
        return True
    text = output.lower()
    return sum(word in text for word in words) * 2 >= len(words)
