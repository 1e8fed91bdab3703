"""Operator-registered functions for ``tool`` nodes (entry point group ``inf_engine.tools``).

An uploaded graph can only name a tool; it never carries code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

GROUP = "inf_engine.tools"


@cache
def registered_tools() -> dict[str, Callable[..., Any]]:
    """Every installed tool by name, loaded once per process."""
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}
