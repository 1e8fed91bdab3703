"""Edit stamps: how a cached trace notices that a module it read was changed.

Every attribute assignment on a module takes a fresh stamp from one process-wide counter.
A :class:`EditCheck` remembers the stamps of the modules a trace read. While the counter
has not moved since the last check, checking costs one comparison; otherwise it compares
the remembered modules' stamps once and catches up.

>>> class Box:
...     pass
>>> box = Box()
>>> check = EditCheck([box])
>>> check.unchanged()
True
>>> stamp_edit(box)
>>> check.unchanged()
False
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

_counter = itertools.count(1)
_latest = 0


def stamp_edit(obj: object) -> None:
    """Record that ``obj`` changed (its ``_edit`` attribute takes a new stamp)."""
    global _latest
    stamp = next(_counter)
    object.__setattr__(obj, "_edit", stamp)
    _latest = stamp


def _stamp_of(obj: object) -> int:
    stamp: int = obj.__dict__.get("_edit", 0)
    return stamp


class EditCheck:
    """Whether any of some objects was edited since this check was made."""

    __slots__ = ("_checked", "_stamps")

    def __init__(self, objects: Iterable[object]) -> None:
        self._checked = _latest
        self._stamps = tuple((obj, _stamp_of(obj)) for obj in objects)

    def unchanged(self) -> bool:
        if self._checked == _latest:
            return True
        latest = _latest  # read first: an edit during the walk moves it again
        if any(_stamp_of(obj) != stamp for obj, stamp in self._stamps):
            return False
        self._checked = latest
        return True
