"""The simulated optimizer: rewrites a parameter from the feedback it is sent, nothing else.

It counts the diagnosis key phrases in the ``FEEDBACK`` items (so feedback lost before it
arrives cannot help), takes the most frequent diagnosis whose fix is not yet in the value,
and appends one phrasebook instruction for it (a paraphrase picked by hash): one sentence
per step, within any ``CONSERVATISM`` sentence budget (the smallest is one).

``harmful``: on a seeded half of the requests the proposal adds the harmful H1
("answer immediately, don't list the items") instead of the fix, so a trainer's gate has
something to reject while the run still learns.

At a low ``CONSERVATISM`` (below ``DROP_BELOW``) a proposal also drops one existing sentence
of the value, picked by hash, on a seeded share ``DROP_BELOW - conservatism`` of the
requests (40% at 0.1); never at 0.5 or above. The dropped sentence may be a needed rule:
the validation gate is what keeps such a proposal out.
"""

from __future__ import annotations

from collections import Counter

from app.llm.simulation import diagnoses
from app.llm.simulation.hashing import fraction, pick
from app.llm.simulation.phrasebook import HARMFUL, PHRASEBOOK
from app.llm.simulation.tags import attribute, section, sections
from app.llm.simulation.text import sentences

HARMFUL_SHARE = 0.5
MIN_SUPPORT = 1 / 3
DROP_BELOW = 0.5


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
    return _appended(dropped(value, request), pick(PHRASEBOOK[wanted], name, value, request))


def drop_share(conservatism: float) -> float:
    """The share of proposals that also drop a sentence at ``conservatism``.

    >>> drop_share(0.1), drop_share(0.5), drop_share(0.9)
    (0.4, 0.0, 0.0)
    """
    return round(max(0.0, DROP_BELOW - conservatism), 6)


def dropped(value: str, request: str) -> str:
    """``value`` less one sentence on a seeded ``drop_share`` of the requests, else as is."""
    parts = sentences(value)
    if not parts or fraction("drop", request) >= drop_share(_conservatism(request)):
        return value
    gone = pick(tuple(parts), "drop which", request)
    start = value.index(gone)
    return f"{value[:start].rstrip()} {value[start + len(gone) :].lstrip()}".strip()


def _conservatism(request: str) -> float:
    """The requested conservatism; 1 (no drops) when the request does not say."""
    try:
        return float(attribute(request, "CONSERVATISM", "value") or 1.0)
    except ValueError:
        return 1.0


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
