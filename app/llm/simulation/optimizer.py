"""The simulated optimizer: rewrites a parameter from the feedback it is sent, nothing else.

It counts the diagnosis key phrases in the ``FEEDBACK`` items (so feedback lost before it
arrives cannot help), takes the most frequent diagnosis whose fix is not yet in the value,
and appends one phrasebook instruction for it (a paraphrase picked by hash). The
``CONSERVATISM`` sentence budget caps how many sentences it adds.
"""

from __future__ import annotations

import re
from collections import Counter

from app.llm.simulation import diagnoses
from app.llm.simulation.hashing import pick
from app.llm.simulation.phrasebook import HARMFUL, PHRASEBOOK
from app.llm.simulation.tags import attribute, section, sections

_BUDGET = re.compile(r"Change at most (\d+) sentence")


def reply(request: str, *, off: bool = False, harmful: bool = False) -> str:
    """``<IMPROVED_VALUE>...</IMPROVED_VALUE>`` with the new text of the parameter."""
    return f"<IMPROVED_VALUE>\n{improved(request, off=off, harmful=harmful)}\n</IMPROVED_VALUE>"


def improved(request: str, *, off: bool = False, harmful: bool = False) -> str:
    """The new value the optimizer proposes for the request's parameter."""
    parameter = section(request, "PARAMETER") or ""
    value = section(parameter, "VALUE") or ""
    if off:
        return value
    budget = sentence_budget(request)
    added = [HARMFUL] if harmful and HARMFUL not in value else []
    wanted = most_frequent(feedback_items(request), value)
    if wanted is not None and len(added) < budget:
        added.append(
            pick(PHRASEBOOK[wanted], attribute(request, "PARAMETER", "name") or "", value, request)
        )
    return " ".join([value, *added]) if value else " ".join(added)


def feedback_items(request: str) -> list[str]:
    """The texts of the ``FEEDBACK`` items."""
    return sections(section(request, "FEEDBACK") or "", "ITEM")


def sentence_budget(request: str) -> int:
    """How many sentences the ``CONSERVATISM`` constraint allows (1 if it is missing)."""
    match = _BUDGET.search(request)
    return max(1, int(match.group(1))) if match else 1


def diagnosis_counts(items: list[str]) -> Counter[str]:
    """How many feedback items name each actionable diagnosis."""
    counts: Counter[str] = Counter()
    for diagnosis in diagnoses.ALL:
        if diagnosis.name in PHRASEBOOK:
            key = diagnosis.key.lower()
            counts[diagnosis.name] = sum(key in item.lower() for item in items)
    return counts


def most_frequent(items: list[str], value: str) -> str | None:
    """The commonest diagnosis (first in ``diagnoses.ALL`` on ties) not yet fixed in ``value``."""
    counts = diagnosis_counts(items)
    open_ = [name for name, n in counts.items() if n > 0 and not _fixed(name, value)]
    return max(open_, key=lambda name: counts[name]) if open_ else None


def _fixed(name: str, value: str) -> bool:
    return any(phrase in value for phrase in PHRASEBOOK[name])
