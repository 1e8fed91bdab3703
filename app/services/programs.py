"""Compiled graphs by version id: parsing and planning happen once per version per process."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from app.engine import Graph, GraphLimits, load_graph
from app.engine.execution.program import Program


class ProgramCache:
    """A small LRU of :class:`Program` objects keyed by graph version id."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._programs: OrderedDict[str, Program] = OrderedDict()

    def get(self, version_id: str, definition: dict[str, Any]) -> Program:
        program = self._programs.get(version_id)
        if program is None:
            program = Program(_graph(definition))
            self._programs[version_id] = program
            if len(self._programs) > self._size:
                self._programs.popitem(last=False)
        else:
            self._programs.move_to_end(version_id)
        return program


def _graph(definition: dict[str, Any]) -> Graph:
    # NOTE: stored definitions were validated on upload; re-validating keeps one code path.
    # Their sizes were accepted then, under the limits of that time, so they are not re-checked.
    return load_graph(definition, limits=_STORED)


_STORED = GraphLimits(template_bytes=None, pattern_chars=None)
