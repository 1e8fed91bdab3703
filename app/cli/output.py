"""Printing answers: JSON, aligned fields, tables (tab-separated when stdout is not a terminal)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text


def echo_json(value: Any, indent: int | None = 2) -> None:
    typer.echo(json.dumps(value, indent=indent, ensure_ascii=False, default=str))


def echo_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """``name  value`` lines, names padded to one width; ``None`` values are left out."""
    shown = [(name, value) for name, value in fields if value is not None]
    width = max((len(name) for name, _ in shown), default=0)
    for name, value in shown:
        typer.echo(f"{name.ljust(width)}  {value}")


def echo_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], whole: Collection[int] = ()
) -> None:
    """A table on a terminal; otherwise one tab-separated line per row, for scripts.

    A narrow terminal shortens cells (``abc…``) except in the columns numbered in ``whole``."""
    console = Console()
    if not console.is_terminal:
        for row in rows:
            typer.echo("\t".join("" if cell is None else str(cell) for cell in row))
        return
    table = Table(box=None, header_style="bold")
    for number, header in enumerate(headers):
        keep = number in whole
        widest = max([len(header), *(len(str(row[number])) for row in rows)]) if keep else None
        table.add_column(header, no_wrap=keep, min_width=widest)
    for row in rows:
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    console.print(table)


def duration(seconds: float | None) -> str:
    """``71s``, ``4m05s``, ``2h03m``; ``-`` when unknown.

    >>> duration(71.4), duration(245), duration(7380), duration(None)
    ('71s', '4m05s', '2h03m', '-')
    """
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def rate(per_s: float | None) -> str:
    """``12.3 items/s``; ``- items/s`` when unknown."""
    return "- items/s" if per_s is None else f"{per_s:.1f} items/s"
