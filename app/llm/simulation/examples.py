"""The shipped optimization examples (``examples/optimization/task-a`` and ``task-b``):
graph, dataset and README, regenerated deterministically.

``python -m app.llm.simulation.examples [ROOT]`` rewrites them under ``ROOT`` (default
``examples/optimization``); a test checks the shipped files equal :func:`files`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from app.llm.simulation import counting, pricing

SPLITS = (("train", 40), ("val", 60), ("test", 120))
SEED = 0

SEED_A = (
    "You answer questions about the things someone has. Think it through step by step. "
    "End your reply with a final line of the form 'Answer: N'."
)

SEED_B_EXTRACT = (
    "Read the product description and report what it says, one fact per line: "
    "'price: ...', 'quantity: ...', 'unit: ...' and the item's 'ref: ...'."
)
SEED_B_COMPARE = (
    "You compare two offers and say which one is the better deal. "
    "End with a final line 'Answer: A' or 'Answer: B'."
)


def task_a_graph() -> dict[str, Any]:
    """Task A as graph JSON: one ``llm`` node whose system text is the trained parameter."""
    return {
        "name": "task-a-counting",
        "description": "Count the objects of one category in a list (offline simulator, Task A).",
        "inputs": {"question": {"type": "string", "description": "The counting question"}},
        "parameters": {
            "instructions": {
                "value": SEED_A,
                "description": "The system prompt of the counting step: how to read the "
                "list, what to count and how to give the final answer",
                "trainable": True,
            }
        },
        "nodes": [
            {
                "id": "count",
                "op": "llm",
                "alias": "task",
                "system": "{instructions}",
                "prompt": "{question}",
            }
        ],
        "outputs": {"answer": "count"},
    }


def task_b_graph() -> dict[str, Any]:
    """Task B as graph JSON: one extractor parameter used by two nodes, then a comparer."""
    extract = {"op": "llm", "alias": "task", "system": "{extraction_prompt}"}
    return {
        "name": "task-b-extract-compare",
        "description": "Which product is cheaper per unit? (offline simulator, Task B)",
        "inputs": {
            "product_a": {"type": "string", "description": "The first product's text"},
            "product_b": {"type": "string", "description": "The second product's text"},
        },
        "parameters": {
            "extraction_prompt": {
                "value": SEED_B_EXTRACT,
                "description": "The system prompt of both extraction steps: which facts to "
                "report from a product text, and how",
                "trainable": True,
            },
            "comparison_prompt": {
                "value": SEED_B_COMPARE,
                "description": "The system prompt of the comparison step: how to decide "
                "which offer is better and how to give the final answer",
                "trainable": True,
            },
        },
        "nodes": [
            {"id": "extract_a", **extract, "prompt": "{product_a}"},
            {"id": "extract_b", **extract, "prompt": "{product_b}"},
            {
                "id": "compare",
                "op": "llm",
                "alias": "task",
                "system": "{comparison_prompt}",
                "prompt": "Product A:\n{extract_a}\n\nProduct B:\n{extract_b}",
            },
        ],
        "outputs": {"answer": "compare"},
    }


def split(items: Sequence[Any]) -> dict[str, list[Any]]:
    """``{"train": first 40, "val": next 60, "test": last 120}``."""
    parts, start = {}, 0
    for name, size in SPLITS:
        parts[name] = list(items[start : start + size])
        start += size
    return parts


def total() -> int:
    """The number of items per task (220)."""
    return sum(size for _, size in SPLITS)


def jsonl(rows: Sequence[dict[str, Any]]) -> str:
    """One compact JSON object per line."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def accuracy_table(
    title: str,
    trainable: Sequence[str],
    fixed: set[str],
    measure: Callable[[set[str], Sequence[Any]], float],
    items: Sequence[Any],
) -> str:
    """A Markdown table: the exact accuracy of every rule state on every split."""
    parts = split(items)
    rows = [f"| {title} | " + " | ".join(parts) + " | all |", "|---|" + "---|" * (len(parts) + 1)]
    for size in range(len(trainable) + 1):
        for state in combinations(trainable, size):
            rules = {*state, *fixed}
            cells = [f"{measure(rules, part):.4f}" for part in parts.values()]
            label = " + ".join(sorted(rules))
            rows.append(f"| {label} | " + " | ".join(cells) + f" | {measure(rules, items):.4f} |")
    return "\n".join(rows)


def task_a_files() -> dict[str, str]:
    """``graph.json``, ``dataset.jsonl`` and ``README.md`` of Task A."""
    items = counting.generate(total(), SEED)
    table = accuracy_table(
        "rules in the prompt", counting.TRAINABLE, {"R3"}, counting.accuracy, items
    )
    harmful = {
        name: counting.accuracy({"R1", "R2", "R3", "H1"}, part)
        for name, part in split(items).items()
    }
    readme = TASK_A_README.format(
        table=table,
        harmful=", ".join(f"{k} {v:.4f}" for k, v in harmful.items()),
        big=sum(i.objects > counting.H1_LIMIT for i in items),
        floor=sum(i.floor for i in items),
    )
    return {
        "graph.json": json.dumps(task_a_graph(), indent=2) + "\n",
        "dataset.jsonl": jsonl([item.example() for item in items]),
        "README.md": readme,
    }


def task_b_files() -> dict[str, str]:
    """``graph.json``, ``dataset.jsonl`` and ``README.md`` of Task B."""
    items = pricing.generate(total(), SEED)
    table = accuracy_table(
        "rules in the prompts", pricing.TRAINABLE, {"C2"}, pricing.accuracy, items
    )
    readme = TASK_B_README.format(table=table, floor=sum(i.floor for i in items))
    return {
        "graph.json": json.dumps(task_b_graph(), indent=2) + "\n",
        "dataset.jsonl": jsonl([item.example() for item in items]),
        "README.md": readme,
    }


def files() -> dict[str, str]:
    """Every shipped file, by path relative to ``examples/optimization``."""
    found = {f"task-a/{name}": text for name, text in task_a_files().items()}
    found.update({f"task-b/{name}": text for name, text in task_b_files().items()})
    return found


def write(root: Path) -> None:
    """Write :func:`files` under ``root``."""
    for name, text in files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


TASK_A_README = """# Task A: category counting (offline optimization simulator)

"I have two apples, a violin and three carrots. How many vegetables do I have?" One `llm`
node (`count`, alias `task`) whose system text is the trainable parameter `instructions`;
output `answer`, scored by the verifier `answer_equals`.

Generated by `python -m app.llm.simulation.examples` (`app/llm/simulation/counting.py`,
seed 0); a test checks these files equal the generator's output. Do not edit by hand.

- `dataset.jsonl`: 220 lines `{{"input": {{"question": ...}}, "expected": "N"}}`; lines 1-40
  are the train split, 41-100 val, 101-220 test. Every question carries a unique canary
  `(ref xxxxxxxx)` for leakage scans.
- Hidden rules the simulated task model (`sim-task`) detects in the parameter text: R1 number
  words to digits (50% of items need it), R2 count only the asked category (70%), R3 a final
  line `Answer: N` (in the seed prompt). {floor} items (a hash of the input alone) are always
  wrong.
- Harmful H1 ("answer immediately, don't list the items") fails the {big} items with more than
  8 objects: with R1 + R2 + R3 + H1 the accuracy is {harmful}.

Exact accuracy of every rule state:

{table}
"""

TASK_B_README = """# Task B: extract -> compare with fan-out (offline optimization simulator)

"Which is cheaper per unit, A or B?" The parameter `extraction_prompt` (P1) is the system
text of TWO `llm` nodes, `extract_a` and `extract_b` (one per product); the comparer
`compare` (parameter `comparison_prompt`, P2) reads both extractions. Output `answer`
(`Answer: A` or `Answer: B`), scored by the verifier `answer_equals`.

Generated by `python -m app.llm.simulation.examples` (`app/llm/simulation/pricing.py`,
seed 0); a test checks these files equal the generator's output. Do not edit by hand.

- `dataset.jsonl`: 220 lines `{{"input": {{"product_a": ..., "product_b": ...}}, "expected":
  "A"}}`; lines 1-40 are the train split, 41-100 val, 101-220 test. Both texts of an item
  carry its unique canary `(ref xxxxxxxx)`.
- Hidden rules the simulated task model (`sim-task`) detects: in P1, E1 common units g -> kg,
  ml -> l (50% of items need it) and E2 exclude shipping fees (40%); in P2, C1 compare per-unit,
  not sticker, price (60%) and C2 answer one letter (in the seed prompt). The need sets follow
  the product of these shares. A comparer without C1 compares sticker prices, and given
  quantities in two different units it picks the larger quantity number. {floor} items (a
  hash of the item's reference) are always wrong: the comparer answers `undecided`.
- Updating only P2 (C1 + C2) reaches the ceiling in the `C1 + C2` row; the gain beyond it
  needs feedback propagated to P1 through both extraction nodes.

Exact accuracy of every rule state (the rules present in P1 and P2 together):

{table}
"""


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("examples/optimization"))
