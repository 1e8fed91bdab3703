"""Splitting instruction text into sentences, the unit rules and budgets are counted in.

>>> sentences("Be brief. Count only fruit!\\nAnswer: N")
['Be brief.', 'Count only fruit!', 'Answer: N']
"""

from __future__ import annotations

import re

_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    """The non-empty sentences of ``text``, stripped."""
    return [part.strip() for part in _BREAK.split(text) if part.strip()]
