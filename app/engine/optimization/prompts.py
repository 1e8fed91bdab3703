"""The prompt contract of the optimizer's own model calls: what the critic, the optimizer and
the judge are sent, and the reply format each one's parser accepts.

Any OpenAI-compatible chat model can serve these roles: the requests are one system and one
user message of plain tagged text, and the replies are parsed by tag, tolerant of text
around the tags. A reply without its tags is asked again with a ``<RETRY>`` note (so a
deterministic model sees a different request), then counted as unparseable.
``docs/optimization.md`` documents the same contract for people serving these roles.

>>> parse_improved_value("Sure.\\n<IMPROVED_VALUE>\\nBe brief.\\n</IMPROVED_VALUE>")
'Be brief.'
>>> parse_score("<SCORE>7</SCORE><CRITIQUE>Shorter.</CRITIQUE>")
(0.7, 'Shorter.')
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.engine.records import FeedbackItem

CRITIC_SYSTEM = (
    "You are the critic in a textual backward pass through an LLM pipeline. You see one "
    "step of the pipeline: the system and user messages it sent, the output it produced, "
    "and feedback on that output from further down the pipeline. For each target listed, "
    "say concretely what should change in it so that the output would have been better. "
    'Reply with one <CRITIQUE target="NAME">...</CRITIQUE> block per target. Write NONE '
    "inside the block of a target that needs no change. Write nothing else."
)

OPTIMIZER_SYSTEM = (
    "You improve one text parameter of an LLM pipeline, using the feedback gathered on it. "
    "Address the problems the feedback names most often. Keep every part of the current "
    "text that the feedback does not criticise. Respect the constraints. Reply with the "
    "complete new text of the parameter between <IMPROVED_VALUE> and </IMPROVED_VALUE>, "
    "and nothing else inside the tags."
)

JUDGE_SYSTEM = (
    "You grade one output of an LLM pipeline against a rubric. Reply with <SCORE>N</SCORE>, "
    "where N is a number from 0 (fails the rubric) to 10 (fully meets it), followed by "
    "<CRITIQUE>...</CRITIQUE> saying what is wrong with the output and what should change."
)

RETRY_NOTE = (
    '<RETRY attempt="{attempt}">Your previous reply could not be parsed. Reply in exactly the '
    "format asked for.</RETRY>"
)

EDIT_CAP_NOTE = (
    '<EDIT_CAP ratio="{ratio:.2f}" cap="{cap:.2f}">The rejected proposal changed too much of '
    "the text. Make a smaller change: keep more of the current value word for word.</EDIT_CAP>"
)

NONE_MARK = "NONE"

_CRITIQUE = re.compile(r'<CRITIQUE\s+target="([^"]+)"\s*>(.*?)</CRITIQUE>', re.S)
_IMPROVED = re.compile(r"<IMPROVED_VALUE>(.*?)</IMPROVED_VALUE>", re.S)
_SCORE = re.compile(r"<SCORE>\s*(-?\d+(?:\.\d+)?)\s*</SCORE>", re.S)
_JUDGE_CRITIQUE = re.compile(r"<CRITIQUE>(.*?)</CRITIQUE>", re.S)


@dataclass(frozen=True, slots=True)
class Target:
    """Something a critic may criticise: a parameter (with its description and value) or an
    upstream node whose output this step read."""

    name: str
    kind: str  # "parameter" or "input"
    description: str
    value: str | None = None  # a parameter's current text


def critic_request(
    node: str,
    system: str,
    prompt: str,
    output: Any,
    feedback: Sequence[str],
    targets: Sequence[Target],
) -> str:
    """The user message asking the critic about one ``llm`` node of one example."""
    items = "\n".join(f"<ITEM>{text}</ITEM>" for text in feedback)
    return (
        f'<NODE id="{node}">\n<SYSTEM>\n{system}\n</SYSTEM>\n<PROMPT>\n{prompt}\n</PROMPT>\n'
        f"<OUTPUT>\n{shown(output)}\n</OUTPUT>\n</NODE>\n"
        f"<FEEDBACK>\n{items}\n</FEEDBACK>\n"
        f"<TARGETS>\n{''.join(_target(t) for t in targets)}</TARGETS>"
    )


def _target(target: Target) -> str:
    value = "" if target.value is None else f"<VALUE>\n{target.value}\n</VALUE>\n"
    return (
        f'<TARGET name="{target.name}" kind="{target.kind}">\n'
        f"<DESCRIPTION>{target.description}</DESCRIPTION>\n{value}</TARGET>\n"
    )


def parse_critiques(reply: str, targets: Sequence[str]) -> dict[str, str] | None:
    """``{target: critique}`` for the listed targets that need a change; ``None`` when the
    reply has no ``CRITIQUE`` block at all (unparseable). ``NONE`` blocks and unknown
    targets are dropped.

    >>> parse_critiques('<CRITIQUE target="p">Say the unit.</CRITIQUE>', ["p", "q"])
    {'p': 'Say the unit.'}
    """
    blocks = _CRITIQUE.findall(reply)
    if not blocks:
        return None
    found: dict[str, str] = {}
    for name, text in blocks:
        text = text.strip()
        if name in targets and text and text.upper() != NONE_MARK:
            found[name] = f"{found[name]}\n{text}" if name in found else text
    return found


def optimizer_request(
    name: str,
    description: str,
    value: str,
    feedback: Sequence[FeedbackItem],
    conservatism: float,
    rejected: Sequence[str] = (),
) -> str:
    """The user message asking the optimizer to rewrite one parameter from all the feedback
    gathered on it in one step (every call site and every example of the mini-batch)."""
    items = "\n".join(_feedback_item(item) for item in feedback)
    earlier = "".join(f"<PROPOSAL>\n{text}\n</PROPOSAL>\n" for text in rejected)
    tried = f"<REJECTED>\n{earlier}</REJECTED>\n" if rejected else ""
    return (
        f'<PARAMETER name="{name}">\n<DESCRIPTION>{description}</DESCRIPTION>\n'
        f"<VALUE>\n{value}\n</VALUE>\n</PARAMETER>\n"
        f'<FEEDBACK count="{len(feedback)}">\n{items}\n</FEEDBACK>\n'
        f"<CONSTRAINTS>\n{conservatism_note(conservatism)}\n</CONSTRAINTS>\n{tried}"
    ).rstrip("\n")


def _feedback_item(item: FeedbackItem) -> str:
    example = "" if item.example is None else f' example="{item.example}"'
    return f'<ITEM{example} node="{item.node}">{item.text}</ITEM>'


def sentence_budget(conservatism: float) -> int:
    """How many sentences one step may add, remove or rewrite: 4 at conservatism 0, 1 at 0.9.

    >>> [sentence_budget(c) for c in (0.0, 0.1, 0.5, 0.9, 1.0)]
    [4, 4, 2, 1, 1]
    """
    return max(1, round((1.0 - conservatism) * 4))


def conservatism_note(conservatism: float) -> str:
    """The constraint line the optimizer is sent for a conservatism in [0, 1]."""
    budget = sentence_budget(conservatism)
    plural = "" if budget == 1 else "s"
    return (
        f'<CONSERVATISM value="{conservatism:.2f}">Change at most {budget} sentence{plural} '
        "(add, remove or rewrite); leave the rest word for word.</CONSERVATISM>"
    )


def parse_improved_value(reply: str) -> str | None:
    """The new text between ``IMPROVED_VALUE`` tags (the last block), or ``None``."""
    blocks = _IMPROVED.findall(reply)
    text = blocks[-1].strip() if blocks else ""
    return text or None


def judge_request(
    rubric: str, inputs: Any, output: Any, expected: Any = None, *, has_expected: bool = False
) -> str:
    """The user message asking the judge to grade one output against ``rubric``."""
    reference = f"<EXPECTED>\n{shown(expected)}\n</EXPECTED>\n" if has_expected else ""
    return (
        f"<RUBRIC>\n{rubric}\n</RUBRIC>\n<INPUT>\n{shown(inputs)}\n</INPUT>\n"
        f"<OUTPUT>\n{shown(output)}\n</OUTPUT>\n{reference}"
    ).rstrip("\n")


def parse_score(reply: str) -> tuple[float, str] | None:
    """``(score in [0, 1], critique)`` from a judge's reply, or ``None`` if it has no score.

    Scores outside 0..10 are clamped.
    """
    match = _SCORE.search(reply)
    if match is None:
        return None
    critique = _JUDGE_CRITIQUE.search(reply)
    score = min(10.0, max(0.0, float(match.group(1)))) / 10.0
    return score, critique.group(1).strip() if critique else ""


def with_retry_note(prompt: str, attempt: int) -> str:
    """``prompt`` asked again after an unparseable reply (``attempt`` counts from 2)."""
    return f"{prompt}\n{RETRY_NOTE.format(attempt=attempt)}"


def with_edit_cap_note(prompt: str, ratio: float, cap: float) -> str:
    """``prompt`` asked again after a proposal that changed more than the edit cap allows
    (the proposal itself is in the request's ``REJECTED`` block).

    >>> with_edit_cap_note("...", 0.8, 0.46).splitlines()[-1][:40]
    '<EDIT_CAP ratio="0.80" cap="0.46">The re'
    """
    return f"{prompt}\n{EDIT_CAP_NOTE.format(ratio=ratio, cap=cap)}"


def shown(value: Any) -> str:
    """A value as the critic, judge or optimizer sees it: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
