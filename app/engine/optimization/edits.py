"""How much a proposal changes a parameter: the normalized edit ratio the conservatism cap
bounds, and the diff shown with each proposal.

>>> edit_ratio("Be brief.", "Be brief.")
0.0
>>> round(edit_ratio("abcd", "abXd"), 2)
0.25
>>> edit_cap(0.5)
0.7
"""

from __future__ import annotations

import difflib

from rapidfuzz.distance import Levenshtein


def edit_ratio(old: str, new: str) -> float:
    """Levenshtein distance over the longer text's length: 0 same, 1 nothing kept."""
    return float(Levenshtein.normalized_distance(old, new))


def edit_cap(conservatism: float) -> float:
    """The default cap on one step's edit ratio: ``1 - 0.6 * conservatism``."""
    return round(1.0 - 0.6 * conservatism, 6)


def text_diff(old: str, new: str) -> str:
    """A unified line diff from ``old`` to ``new`` (empty when equal).

    >>> print(text_diff("a\\nb", "a\\nc"))
    --- old
    +++ new
    @@ -1,2 +1,2 @@
     a
    -b
    +c
    """
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), "old", "new", lineterm="")
    return "\n".join(lines)
