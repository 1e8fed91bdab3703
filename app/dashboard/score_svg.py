"""An optimization run's score curve as SVG: one ``<circle class="point">`` per scored step
(green when accepted, grey when rejected) on a polyline, the score axis from 0 to 1 (or to
the highest score when one is above 1). No chart library.

Pure: the points in, a string out. Every text is escaped.

>>> svg = score_svg([(0, 0.5, True), (1, 0.75, False)])
>>> svg.count('class="point'), svg.count('point accepted')
(2, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from app.lifecycle import EventKind

WIDTH = 480
HEIGHT = 200
PAD = 32

Point = tuple[int, float, bool]  # (step, score, accepted)


def score_svg(points: Sequence[Point]) -> str:
    """The curve of ``points``, in step order; a short note when there is none yet."""
    if not points:
        return '<p class="hint" data-field="no-scores">No scored step yet.</p>'
    top = max(1.0, *(score for _, score, _ in points))
    last = max(1, max(step for step, _, _ in points))
    where = [(_x(step, last), _y(score, top), step, score, ok) for step, score, ok in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, *_ in where)
    dots = "".join(_dot(*spot) for spot in where)
    title = escape(f"Validation score by step: {len(points)} points")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="curve" role="img" '
        f'aria-labelledby="curve-title" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}"><title id="curve-title">{title}</title>'
        f"{_axes(top, last)}"
        f'<polyline points="{line}" fill="none" stroke="#1f5f99" stroke-width="2"/>'
        f"{dots}</svg>"
    )


def _x(step: int, last: int) -> float:
    return PAD + (WIDTH - 2 * PAD) * step / last


def _y(score: float, top: float) -> float:
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * score / top


def _axes(top: float, last: int) -> str:
    bottom, right = HEIGHT - PAD, WIDTH - PAD
    return (
        f'<path d="M{PAD},{PAD} V{bottom} H{right}" stroke="#333" fill="none"/>'
        f'<text x="4" y="{PAD + 4}" font-size="11">{top:.2f}</text>'
        f'<text x="4" y="{bottom + 4}" font-size="11">0</text>'
        f'<text x="{right - 40}" y="{HEIGHT - 8}" font-size="11">step {last}</text>'
    )


def _dot(x: float, y: float, step: int, score: float, accepted: bool) -> str:
    kind = (EventKind.ACCEPTED if accepted else EventKind.REJECTED).value
    fill = "#1a7f37" if accepted else "#767676"
    return (
        f'<circle class="point {kind}" data-step="{step}" cx="{x:.1f}" cy="{y:.1f}" r="4" '
        f'fill="{fill}"><title>step {step}: {score:.3f} ({kind})</title></circle>'
    )
