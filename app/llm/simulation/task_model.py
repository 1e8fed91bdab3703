"""The simulated task model: answers a pipeline step with the policy of the rules its
system text (the trained parameter) states.

It recognises the step by the shape of its user message: a Task A counting question, a
Task B product text (extractor) or two extractions (comparer). Anything else gets ``None``
(the caller falls back to its generic reply).

>>> question = "I have two apples and a drum. How many fruits do I have?"
>>> print(reply("End with a final line 'Answer: N'.", question))
Counting the fruits:
- two apples: 1
- a drum: 1
Total: 2
Answer: 2
"""

from __future__ import annotations

from app.llm.simulation import counting, pricing
from app.llm.simulation.hashing import fraction
from app.llm.simulation.rules import detect


def reply(system: str, prompt: str) -> str | None:
    """The task model's answer to one step, or ``None`` if the step is not a known task."""
    rules = detect(system)
    question = counting.parse_question(prompt)
    if question is not None:
        return _count_reply(rules, *question, floor=_floor(prompt))
    return pricing.reply(rules, prompt)


def _floor(prompt: str) -> bool:
    return fraction("task-a-floor", prompt.strip()) < counting.FLOOR


def _count_reply(
    rules: frozenset[str], entries: tuple[counting.Entry, ...], category: str, *, floor: bool
) -> str:
    total = counting.answer(entries, category, rules, floor)
    if "H1" in rules:
        lines = [f"There are {total} {category}."]
    else:
        listed = counting.counted(entries, category, rules)
        lines = [f"Counting the {category}:", *(f"- {e.phrase}: {v}" for e, v in listed)]
        lines.append(f"Total: {total}")
    lines.append(f"Answer: {total}" if "R3" in rules else f"So I have {total} {category}.")
    return "\n".join(lines)
