"""The critic's reading of a counting step: which corrections explain the expected answer.

The reply lists what it counted (``- three carrots: 1``). Two corrections are possible:
drop the entries outside the asked category, and read number words as their values. The
critic names the smallest set of corrections under which the listed entries add up to the
expected answer; when none does, it says so without a diagnosis the optimizer could act on
(so feedback paired with the wrong example teaches nothing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.llm.simulation import counting, diagnoses
from app.llm.simulation.diagnoses import Diagnosis

Found = list[tuple[Diagnosis, str]]
_LISTED = re.compile(r"^- (.+): (\d+)$", re.M)
_TOTAL = re.compile(r"^Total: (\d+)$", re.M)
_ANSWER = re.compile(r"Answer:\s*(.+)", re.I)
CORRECTIONS = ((), ("category",), ("words",), ("category", "words"))


def counting_diagnoses(
    entries: Sequence[counting.Entry], category: str, output: str, expected: str | None
) -> Found:
    """What went wrong in a counting reply, from the question, the reply and the expected
    answer (with no expected answer: every discrepancy the listing shows)."""
    found: Found = [] if _ANSWER.search(output) else [(diagnoses.ANSWER_LINE, "")]
    listed = [(phrase, int(value)) for phrase, value in _LISTED.findall(output)]
    if not listed:
        return [*found, (diagnoses.UNLISTED, "")]
    reading = Reading(entries, category, listed)
    target = int(expected) if expected is not None and expected.strip().isdigit() else None
    if target is None:
        return found + reading.diagnoses(("category", "words"))
    for corrections in CORRECTIONS:
        if reading.total(corrections) == target:
            return found + (reading.diagnoses(corrections) or _addition(output, target))
    return [*found, (diagnoses.UNEXPLAINED, "")]


def _addition(output: str, target: int) -> Found:
    total = _TOTAL.search(output)
    return [] if total is not None and int(total.group(1)) == target else [(diagnoses.ADDITION, "")]


class Reading:
    """A reply's listing against the question."""

    def __init__(
        self, entries: Sequence[counting.Entry], category: str, listed: list[tuple[str, int]]
    ) -> None:
        self.by_phrase = {e.phrase: e for e in entries}
        self.asked = {
            p for p, e in self.by_phrase.items() if counting.CATEGORY_OF[e.noun] == category
        }
        self.listed = [(p, v) for p, v in listed if p in self.by_phrase]

    def total(self, corrections: Sequence[str]) -> int:
        """The listed entries' sum after ``corrections``."""
        kept = [(p, v) for p, v in self.listed if "category" not in corrections or p in self.asked]
        return sum(self.by_phrase[p].count if "words" in corrections else v for p, v in kept)

    def diagnoses(self, corrections: Sequence[str]) -> Found:
        """The diagnoses of the listed errors that ``corrections`` fix."""
        found: Found = []
        outside = [p for p, _ in self.listed if p not in self.asked]
        kept = [(p, v) for p, v in self.listed if "category" not in corrections or p in self.asked]
        misread = [p for p, v in kept if self.by_phrase[p].count != v]
        if "category" in corrections and outside:
            found.append((diagnoses.OTHER_CATEGORY, outside[0]))
        if "words" in corrections and misread:
            found.append((diagnoses.NUMBER_WORDS, misread[0]))
        return found
