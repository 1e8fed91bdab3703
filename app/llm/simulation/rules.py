"""The task model's rule detectors: which hidden rules an instruction text states.

A rule is present when one sentence of the text matches every pattern of one of its
alternatives, so paraphrases work and unrelated text does not. This table belongs to the
task side only; the optimizer writes from its own phrasebook (``phrasebook.py``) and never
reads it.

>>> sorted(detect("Count only items of the category the question asks about."))
['R2']
>>> sorted(detect("Turn spelled-out numbers into digits first."))
['R1']
>>> detect("Be helpful and concise.")
frozenset()
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.llm.simulation.text import sentences

Alternative = tuple[re.Pattern[str], ...]


def _all(*patterns: str) -> Alternative:
    return tuple(re.compile(p, re.I) for p in patterns)


NUMBER_WORDS = (
    r"number[- ]?words?|spelled[- ]out numbers?|written[- ]out numbers?"
    r"|numbers? written (?:out|as words)"
)
DIGITS = r"\bdigits?\b|numerals?|figures|integers?|numeric"
ONLY = r"\bonly\b|\bjust\b|\bsolely\b|\bexclusively\b|\bignore\b|\bskip\b|\bexclude\b|leave out"
ASKED = r"\basked\b|\brequested\b|\bnamed\b|\bspecified\b|question"
KIND = r"categor|\bkinds?\b|\btypes?\b|\bclass\b|\bgroups?\b"
UNITS = r"\bkg\b|kilogram|\blitres?\b|\bliters?\b|\bl\b"
NORMALISE = r"convert|express|normali[sz]|common unit|same unit|standard unit|base unit"
FEES = r"shipping|delivery|postage"
LEAVE_OUT = (
    r"exclude|ignore|leave\b.*\bout|leaving\b.*\bout|without|omit|remove|drop"
    r"|do not include|don't include|never include|not part"
)
PER_UNIT = r"per[- ]unit|unit price|price per|per kg|per litre|divid"
DECIDE = r"compar|cheaper|better deal|decid|choos|pick"

DETECTORS: dict[str, tuple[Alternative, ...]] = {
    # Task A: category counting
    "R1": (_all(NUMBER_WORDS, DIGITS + r"|\bconvert|\bturn\b|\bread\b"),),
    "R2": (_all(ONLY, ASKED, KIND),),
    "R3": (_all(r"answer\s*:"),),
    "H1": (
        _all(r"immediately|right away|at once|straight away", r"answer"),
        _all(r"(?:don't|do not|never|without) list"),
    ),
    # Task B: extract -> compare
    "E1": (_all(NORMALISE, UNITS),),
    "E2": (_all(FEES, LEAVE_OUT),),
    "C1": (_all(PER_UNIT, DECIDE), _all(r"not (?:the )?sticker price")),
    "C2": (_all(r"answer\s*:\s*['\"]?(?:A|B|X)\b"), _all(r"(?:one|single) letter")),
}


def detect(text: str, rules: Iterable[str] | None = None) -> frozenset[str]:
    """The names of the rules (of ``rules``, default all) that ``text`` states."""
    found = sentences(text)
    wanted = DETECTORS if rules is None else {name: DETECTORS[name] for name in rules}
    return frozenset(
        name
        for name, alternatives in wanted.items()
        if any(_matches(alt, s) for alt in alternatives for s in found)
    )


def _matches(alternative: Alternative, sentence: str) -> bool:
    return all(pattern.search(sentence) for pattern in alternative)
