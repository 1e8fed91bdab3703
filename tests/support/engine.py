"""Helpers for engine tests that talk to the fake server."""

from __future__ import annotations

from collections.abc import Callable

from app.engine import ResourceManager

MakeManager = Callable[..., ResourceManager]
"""``make(alias=dict(endpoint fields), ...)`` -> a manager whose aliases call the fake server."""
