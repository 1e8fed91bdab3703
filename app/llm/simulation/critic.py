"""The simulated critic: names the failure it sees in one step's evidence.

It reads the critic request of the prompt contract (the step's system text, prompt and
output, the feedback on the output, the targets) and nothing else: no rules, no test items.
A wrong output gets a ``CRITIQUE`` per target that should change, with a diagnosis sentence
(``diagnoses.py``); every other target gets ``NONE``.

- Counting step: compares the reply's listing with the question (category, number words).
- Comparer: if its letter follows from its inputs (price / quantity of the extractions) it
  blames the inputs ("the extracted values led to a wrong answer"), else its own prompt.
- Extractor: re-reads the product text and names unit or fee errors, or nothing.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from app.llm.simulation import counting, diagnoses, pricing
from app.llm.simulation.critic_counting import counting_diagnoses
from app.llm.simulation.diagnoses import Diagnosis, say
from app.llm.simulation.tags import section, sections, targets

GENERIC = "The output was not good enough. The instructions could be clearer and more helpful."
_EXPECTED = re.compile(r"the expected answer is ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")
_ANSWER = re.compile(r"Answer:\s*(.+)", re.I)
_QUOTED = re.compile(r"The final answer (?:was )?('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one critic request shows."""

    system: str
    prompt: str
    output: str
    feedback: list[str]
    targets: list[tuple[str, str]]

    @classmethod
    def parse(cls, text: str) -> Evidence:
        return cls(
            section(text, "SYSTEM") or "",
            section(text, "PROMPT") or "",
            section(text, "OUTPUT") or "",
            sections(section(text, "FEEDBACK") or "", "ITEM"),
            targets(text),
        )

    @property
    def expected(self) -> str | None:
        """The expected answer a verifier's feedback names, if any."""
        for item in self.feedback:
            match = _EXPECTED.search(item)
            if match:
                return str(ast.literal_eval(match.group(1)))
        return None

    @property
    def quotes_another_answer(self) -> bool:
        """Whether the feedback quotes a final answer this output did not give."""
        found = _ANSWER.findall(self.output)
        given = found[-1].strip() if found else None
        quoted = [m.group(1) for item in self.feedback if (m := _QUOTED.search(item))]
        return any(str(ast.literal_eval(q)) != given for q in quoted)

    @property
    def has_complaint(self) -> bool:
        """Whether any feedback item says something is wrong."""
        return any(not item.rstrip().endswith("is correct.") for item in self.feedback)


def reply(request: str, *, generic: bool = False) -> str:
    """The critic's reply: one ``CRITIQUE`` block per target."""
    evidence = Evidence.parse(request)
    blame = _blame(evidence, generic)
    return "\n".join(
        f'<CRITIQUE target="{name}">{blame.get(name, "NONE")}</CRITIQUE>'
        for name, _ in evidence.targets
    )


def _blame(evidence: Evidence, generic: bool) -> dict[str, str]:
    """``{target: critique}`` for the targets that should change."""
    if not evidence.has_complaint:
        return {}
    parameters = [name for name, kind in evidence.targets if kind == "parameter"]
    if generic:
        return dict.fromkeys(parameters, GENERIC)
    if evidence.quotes_another_answer:
        return dict.fromkeys(parameters, say(diagnoses.MISMATCH))
    pair = pricing.parse_extractions(evidence.prompt)
    if pair is not None:
        return _blame_comparer(evidence, pair)
    found = _diagnose(evidence)
    if found is None:
        return {}
    critique = " ".join(say(d, example) for d, example in found)
    return dict.fromkeys(parameters, critique) if critique else {}


def _diagnose(evidence: Evidence) -> list[tuple[Diagnosis, str]] | None:
    question = counting.parse_question(evidence.prompt)
    if question is not None:
        return counting_diagnoses(*question, evidence.output, evidence.expected)
    product = pricing.parse_product(evidence.prompt)
    if product is not None:
        return extraction_diagnoses(product, evidence.output)
    return None


def _blame_comparer(evidence: Evidence, pair: dict[str, pricing.Extraction]) -> dict[str, str]:
    """A comparer whose answer follows from its inputs blames the inputs, else its prompt."""
    parameters = [name for name, kind in evidence.targets if kind == "parameter"]
    inputs = [name for name, kind in evidence.targets if kind == "input"]
    found = _ANSWER.findall(evidence.output)
    letter = found[-1].strip() if found else None
    expected = evidence.expected or "the other product"
    if letter not in ("A", "B"):
        return dict.fromkeys(parameters, say(diagnoses.LETTER))
    a, b = pricing.naive_per_unit(pair["A"]), pricing.naive_per_unit(pair["B"])
    if letter == ("A" if a < b else "B"):
        return dict.fromkeys(inputs, say(diagnoses.BAD_INPUTS, expected))
    return dict.fromkeys(parameters, say(diagnoses.STICKER, "B" if letter == "A" else "A"))


def extraction_diagnoses(product: pricing.Product, output: str) -> list[tuple[Diagnosis, str]]:
    """Unit and fee errors in an extraction, found by re-reading the product text."""
    fields = dict(re.findall(r"^(price|unit): (\S+)$", output, re.M))
    found: list[tuple[Diagnosis, str]] = []
    if product.unit in ("g", "ml") and fields.get("unit") == product.unit:
        found.append((diagnoses.UNITS, f"{product.quantity:g} {product.unit}"))
    price = _number(fields.get("price"))
    if product.fee and price is not None and abs(price - product.price) > 0.005:
        fee = f"${product.price:.2f} plus a ${product.fee:.2f} fee"
        found.append((diagnoses.FEES, fee))
    return found


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
