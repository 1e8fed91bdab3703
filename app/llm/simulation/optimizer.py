"""The simulated optimizer: rewrites a parameter from the feedback it is sent, nothing else.

It counts the diagnosis key phrases in the ``FEEDBACK`` items (so feedback lost before it
arrives cannot help), takes the most frequent diagnosis whose fix is not yet in the value,
and appends one phrasebook instruction for it (a paraphrase picked by hash): one sentence
per step, within any ``CONSERVATISM`` sentence budget (the smallest is one).

``harmful``: on a seeded half of the requests the proposal adds the harmful H1
("answer immediately, don't list the items") instead of the fix, so a trainer's gate has
something to reject while the run still learns.
"""

from __future__ import annotations

from collections import Counter

from app.llm.simulation import diagnoses
from app.llm.simulation.hashing import fraction, pick
from app.llm.simulation.phrasebook import HARMFUL, PHRASEBOOK
from app.llm.simulation.tags import attribute, section, sections

HARMFUL_SHARE = 0.5
MIN_SUPPORT = 1 / 3


def reply(request: str, *, off: bool = False, harmful: bool = False) -> str:
    """``<IMPROVED_VALUE>...</IMPROVED_VALUE>`` with the new text of the parameter."""
    return f"<IMPROVED_VALUE>\n{improved(request, off=off, harmful=harmful)}\n</IMPROVED_VALUE>"


def improved(request: str, *, off: bool = False, harmful: bool = False) -> str:
    """The new value the optimizer proposes for the request's parameter."""
    parameter = section(request, "PARAMETER") or ""
    value = section(parameter, "VALUE") or ""
    if off:
        return value
    if harmful and HARMFUL not in value and fraction("harmful", request) < HARMFUL_SHARE:
        return _appended(value, HARMFUL)
    wanted = most_frequent(feedback_items(request), value)
    if wanted is None:
        return value
    name = attribute(request, "PARAMETER", "name") or ""
    return _appended(value, pick(PHRASEBOOK[wanted], name, value, request))


def _appended(value: str, sentence: str) -> str:
    return f"{value} {sentence}" if value else sentence


def feedback_items(request: str) -> list[str]:
    """The texts of the ``FEEDBACK`` items."""
    return sections(section(request, "FEEDBACK") or "", "ITEM")


def diagnosis_counts(items: list[str]) -> Counter[str]:
    """How many feedback items name each actionable diagnosis."""
    counts: Counter[str] = Counter()
    for diagnosis in diagnoses.ALL:
        if diagnosis.name in PHRASEBOOK:
            key = diagnosis.key.lower()
            counts[diagnosis.name] = sum(key in item.lower() for item in items)
    return counts


def most_frequent(items: list[str], value: str) -> str | None:
    """The commonest diagnosis not yet fixed in ``value``, if at least ``MIN_SUPPORT`` of the
    items name it (one stray remark is no pattern); a tie is broken by a hash of the value
    and the feedback, so no diagnosis is favoured by its place in a table."""
    counts = diagnosis_counts(items)
    floor = max(1.0, MIN_SUPPORT * len(items))
    open_ = [name for name, n in counts.items() if n >= floor and not _fixed(name, value)]
    if not open_:
        return None
    top = max(counts[name] for name in open_)
    return pick(tuple(name for name in open_ if counts[name] == top), value, *items)


def _fixed(name: str, value: str) -> bool:
    return any(phrase in value for phrase in PHRASEBOOK[name])
