"""Task B, extract -> compare: items, the task model's two policies, and exact accuracies.

Two product texts ("Hillside olive oil, 750 ml for $6.40. Shipping fee: $2.50. (ref ...)");
an extractor (parameter P1, run once per product) reports price, quantity and unit; a
comparer (P2) reads both extractions and answers ``Answer: A`` or ``Answer: B`` (which is
cheaper per unit). Hidden rules: E1 common units g->kg, ml->l, E2 exclude shipping fees
(extractor); C1 compare per-unit, not sticker price, C2 answer one letter (comparer; C2 in
the seed). A comparer without C1 compares sticker prices, and given quantities in two
different units it is confused and picks the larger quantity number. Rejection sampling
makes an item right exactly when every rule it needs is present; 5% (a hash of the item's
reference) are always wrong: the comparer answers ``undecided``.

>>> items = generate(20, seed=0)
>>> accuracy(set(RULES), items) == sum(not i.floor for i in items) / 20
True
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import combinations

from app.llm.simulation.hashing import canary, fraction
from app.llm.simulation.quotas import joint_quota

FLOOR = 0.05
NEEDS = {"E1": 0.5, "E2": 0.4, "C1": 0.6}
TRAINABLE = ("E1", "E2", "C1")
RULES = (*TRAINABLE, "C2")
GOODS = {
    "mass": ("coffee beans", "rice", "flour", "cheese", "sugar", "oats"),
    "volume": ("olive oil", "milk", "apple juice", "shampoo", "vinegar", "soy sauce"),
}
BRANDS = ("Hillside", "Northway", "Bluebell", "Oakmont", "Riverbend", "Sunfield", "Greystone")
SMALL = {"mass": "g", "volume": "ml"}
LARGE = {"mass": "kg", "volume": "l"}
FEES = (1.99, 2.5, 3.95, 4.99, 5.5)
UNDECIDED = "undecided"

_PRODUCT = re.compile(r"(\d+(?:\.\d+)?) (g|kg|ml|l) for \$(\d+\.\d\d)\.")
_FEE = re.compile(r"Shipping fee: \$(\d+\.\d\d)\.")
_REF = re.compile(r"\(ref ([0-9a-f]{8})\)")
_FIELD = re.compile(r"^(price|quantity|unit|ref): (\S+)$", re.M)
_BLOCK = re.compile(r"Product ([AB]):\n(.*?)(?=\n\s*Product [AB]:|\Z)", re.S)


@dataclass(frozen=True, slots=True)
class Product:
    """What a product text states."""

    name: str
    quantity: float
    unit: str
    price: float
    fee: float
    ref: str

    def text(self) -> str:
        fee = f" Shipping fee: ${self.fee:.2f}." if self.fee else ""
        offer = f"{self.quantity:g} {self.unit} for ${self.price:.2f}."
        return f"{self.name}, {offer}{fee} (ref {self.ref})"

    @property
    def per_unit(self) -> float:
        """The true price per kg or l, shipping excluded."""
        return self.price / (self.quantity / 1000 if self.unit in ("g", "ml") else self.quantity)


@dataclass(frozen=True, slots=True)
class Extraction:
    """What the extractor reports."""

    price: float
    quantity: float
    unit: str
    ref: str

    def text(self) -> str:
        lines = (f"price: {self.price:.2f}", f"quantity: {self.quantity:g}", f"unit: {self.unit}")
        return "\n".join([*lines, f"ref: {self.ref}"])


@dataclass(frozen=True, slots=True)
class Item:
    """One question: two products, the answer and whether it is in the floor."""

    a: Product
    b: Product

    @property
    def expected(self) -> str:
        return "A" if self.a.per_unit < self.b.per_unit else "B"

    @property
    def floor(self) -> bool:
        return is_floor(self.a.ref)

    def example(self) -> dict[str, object]:
        """The dataset line: ``{"input": {"product_a", "product_b"}, "expected": "A"}``."""
        return {
            "input": {"product_a": self.a.text(), "product_b": self.b.text()},
            "expected": self.expected,
        }


def is_floor(ref: str) -> bool:
    """Always answered wrong, whatever the prompts (a hash of the item's reference alone)."""
    return fraction("task-b-floor", ref) < FLOOR


def parse_product(text: str) -> Product | None:
    """A product text's facts, or ``None`` if ``text`` is not one."""
    found, ref = _PRODUCT.search(text), _REF.search(text)
    if found is None:
        return None
    fee = _FEE.search(text)
    return Product(
        text[: found.start()].rstrip(", "),
        float(found.group(1)),
        found.group(2),
        float(found.group(3)),
        float(fee.group(1)) if fee else 0.0,
        ref.group(1) if ref else "",
    )


def extract(product: Product, rules: Collection[str]) -> Extraction:
    """The extractor's report under ``rules``."""
    price = product.price if "E2" in rules else product.price + product.fee
    quantity, unit = product.quantity, product.unit
    if "E1" in rules and unit in ("g", "ml"):
        quantity, unit = quantity / 1000, LARGE["mass" if unit == "g" else "volume"]
    return Extraction(round(price, 2), quantity, unit, product.ref)


def parse_extractions(text: str) -> dict[str, Extraction] | None:
    """``{"A": ..., "B": ...}`` from a comparer's prompt, or ``None`` if it is not one."""
    found = {}
    for letter, block in _BLOCK.findall(text):
        fields = dict(_FIELD.findall(block))
        try:
            found[letter] = Extraction(
                float(fields["price"]),
                float(fields["quantity"]),
                fields["unit"],
                fields.get("ref", ""),
            )
        except (KeyError, ValueError):
            return None
    return found if set(found) == {"A", "B"} else None


def naive_per_unit(extraction: Extraction) -> float:
    """Price divided by the quantity number, whatever its unit."""
    return extraction.price / extraction.quantity if extraction.quantity else float("inf")


def choose(a: Extraction, b: Extraction, rules: Collection[str]) -> str:
    """The comparer's pick (before the floor) under ``rules``."""
    if "C1" in rules:
        return "A" if naive_per_unit(a) < naive_per_unit(b) else "B"
    if a.unit != b.unit:
        return "A" if a.quantity > b.quantity else "B"
    return "A" if a.price < b.price else "B"


def decide(a: Extraction, b: Extraction, rules: Collection[str], floor: bool) -> str:
    """The comparer's answer letter; a floor item is never decided (so always wrong)."""
    return UNDECIDED if floor else choose(a, b, rules)


def compare_reply(rules: Collection[str], a: Extraction, b: Extraction, floor: bool) -> str:
    """The comparer's reply text."""
    letter = decide(a, b, rules, floor)
    if "C1" in rules:
        lines = [
            f"{k}: {e.price:.2f} / {e.quantity:g} = {naive_per_unit(e):.4f} per {e.unit}"
            for k, e in (("A", a), ("B", b))
        ]
    else:
        lines = [
            f"{k} costs {e.price:.2f} for {e.quantity:g} {e.unit}." for k, e in (("A", a), ("B", b))
        ]
    lines.append(f"Answer: {letter}" if "C2" in rules else f"Product {letter} is the better deal.")
    return "\n".join(lines)


def reply(rules: Collection[str], prompt: str) -> str | None:
    """The task model's reply to an extractor or comparer step, or ``None``."""
    product = parse_product(prompt)
    if product is not None:
        return extract(product, rules).text()
    pair = parse_extractions(prompt)
    if pair is None:
        return None
    floor = is_floor(pair["A"].ref) if pair["A"].ref else fraction("task-b-floor", prompt) < FLOOR
    return compare_reply(rules, pair["A"], pair["B"], floor)


def answer(item: Item, rules: Collection[str]) -> str | None:
    """The pipeline's final letter under ``rules`` (``None``: no answer line, C2 missing)."""
    if "C2" not in rules:
        return None
    return decide(extract(item.a, rules), extract(item.b, rules), rules, item.floor)


def correct(item: Item, rules: Collection[str]) -> bool:
    return answer(item, rules) == item.expected


def accuracy(rules: Collection[str], items: Sequence[Item]) -> float:
    """The exact fraction of ``items`` answered right with ``rules`` across both prompts."""
    return sum(correct(item, rules) for item in items) / len(items)


def needs(item: Item) -> frozenset[str]:
    """The trainable rules ``item`` needs, from its content."""
    wanted = set()
    if item.a.unit != item.b.unit:
        wanted.add("E1")
    if item.a.fee or item.b.fee:
        wanted.add("E2")
    if ("A" if item.a.price < item.b.price else "B") != item.expected:
        wanted.add("C1")
    return frozenset(wanted)


def generate(n: int, seed: int = 0) -> list[Item]:
    """``n`` items whose need sets follow the product of the ``NEEDS`` shares exactly (up to
    rounding), so the rule states' accuracies sit at the designed values."""
    rng = random.Random(f"task-b:{seed}")
    wanted = joint_quota(n, NEEDS)
    rng.shuffle(wanted)
    return [_item(rng, f"{seed}:{i}", need) for i, need in enumerate(wanted)]


def _item(rng: random.Random, key: str, wanted: frozenset[str]) -> Item:
    ref = canary("task-b", key)
    for _ in range(200_000):
        item = _draw(rng, ref, wanted)
        if needs(item) == wanted and _consistent(item, wanted):
            return item
    raise AssertionError(f"no item found for {key}")  # pragma: no cover


def _consistent(item: Item, wanted: frozenset[str]) -> bool:
    """Right exactly when every needed rule is present (the floor aside), and no ties."""
    if item.a.per_unit == item.b.per_unit:
        return False
    for size in range(len(TRAINABLE) + 1):
        for state in combinations(TRAINABLE, size):
            rules = {*state, "C2"}
            a, b = extract(item.a, rules), extract(item.b, rules)
            if _tied(a, b):
                return False
            right = decide(a, b, rules, False) == item.expected
            if right != wanted.issubset(state):
                return False
    return True


def _tied(a: Extraction, b: Extraction) -> bool:
    return a.price == b.price or a.quantity == b.quantity or naive_per_unit(a) == naive_per_unit(b)


def _draw(rng: random.Random, ref: str, wanted: frozenset[str]) -> Item:
    dimension = rng.choice(sorted(GOODS))
    good = rng.choice(GOODS[dimension])
    units = [SMALL[dimension], LARGE[dimension]]
    if "E1" not in wanted:
        units = [units[rng.random() < 0.5]] * 2
    rng.shuffle(units)
    fees = [0.0, 0.0]
    if "E2" in wanted:
        fees = [rng.choice(FEES) if rng.random() < 0.5 else 0.0, rng.choice(FEES)]
        rng.shuffle(fees)
    brands = rng.sample(BRANDS, 2)
    a, b = (
        _product(rng, f"{brand} {good}", unit, fee, ref)
        for brand, unit, fee in zip(brands, units, fees, strict=True)
    )
    return Item(a, b)


def _product(rng: random.Random, name: str, unit: str, fee: float, ref: str) -> Product:
    quantity = (
        rng.choice((250, 400, 500, 750, 800))
        if unit in ("g", "ml")
        else rng.choice((1, 1.5, 2, 2.5, 3))
    )
    price = rng.randint(150, 3000) / 100
    return Product(name, float(quantity), unit, price, fee, ref)
