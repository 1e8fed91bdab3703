"""Task A, category counting: items, the task model's policy, and exact accuracies.

"I have two apples, a violin, three carrots... How many vegetables do I have?" Hidden rules:
R1 number words to digits, R2 count only the asked category, R3 a final ``Answer: N`` line;
the harmful H1 ("answer immediately, don't list the items") fails items with more than
``H1_LIMIT`` objects. Items are drawn by rejection sampling so that an item is answered
correctly exactly when every rule it needs is present (errors never cancel), and a fixed 5%
(by a hash of the input alone) are always wrong.

>>> items = generate(20, seed=0)
>>> accuracy({"R1", "R2", "R3"}, items) == sum(not i.floor for i in items) / 20
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
H1_LIMIT = 8
NEEDS = {"R1": 0.5, "R2": 0.7}
TRAINABLE = ("R1", "R2")

CATEGORIES: dict[str, tuple[tuple[str, str], ...]] = {
    "fruits": (
        ("apple", "apples"),
        ("banana", "bananas"),
        ("plum", "plums"),
        ("peach", "peaches"),
        ("orange", "oranges"),
        ("grape", "grapes"),
    ),
    "vegetables": (
        ("carrot", "carrots"),
        ("cabbage", "cabbages"),
        ("onion", "onions"),
        ("potato", "potatoes"),
        ("leek", "leeks"),
        ("turnip", "turnips"),
    ),
    "instruments": (
        ("violin", "violins"),
        ("drum", "drums"),
        ("flute", "flutes"),
        ("trumpet", "trumpets"),
        ("piano", "pianos"),
        ("cello", "cellos"),
    ),
    "animals": (
        ("cat", "cats"),
        ("goat", "goats"),
        ("rabbit", "rabbits"),
        ("duck", "ducks"),
        ("pig", "pigs"),
        ("snail", "snails"),
    ),
}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CATEGORY_OF = {noun: cat for cat, nouns in CATEGORIES.items() for pair in nouns for noun in pair}
SINGULAR = {noun: pair[0] for nouns in CATEGORIES.values() for pair in nouns for noun in pair}
QUESTION = re.compile(r"How many (\w+) do I have\?")


@dataclass(frozen=True, slots=True)
class Entry:
    """One phrase of the list: ``count`` things called ``noun``, the count ``spelled`` so."""

    count: int
    noun: str
    spelled: str  # "a", "3" or "three"

    @property
    def phrase(self) -> str:
        return f"{self.spelled} {self.noun}"

    @property
    def as_word(self) -> bool:
        return self.spelled in NUMBER_WORDS


@dataclass(frozen=True, slots=True)
class Item:
    """One question with its answer and what it needs."""

    entries: tuple[Entry, ...]
    category: str
    ref: str

    @property
    def question(self) -> str:
        *rest, last = (e.phrase for e in self.entries)
        listed = f"{', '.join(rest)} and {last}" if rest else last
        return f"I have {listed}. How many {self.category} do I have? (ref {self.ref})"

    @property
    def expected(self) -> str:
        return str(sum(e.count for e in self.entries if CATEGORY_OF[e.noun] == self.category))

    @property
    def objects(self) -> int:
        return sum(e.count for e in self.entries)

    @property
    def floor(self) -> bool:
        """Always answered wrong, whatever the prompt (a hash of the input alone)."""
        return fraction("task-a-floor", self.question) < FLOOR

    def example(self) -> dict[str, object]:
        """The dataset line: ``{"input": {"question": ...}, "expected": "N"}``."""
        return {"input": {"question": self.question}, "expected": self.expected}


def parse_question(text: str) -> tuple[tuple[Entry, ...], str] | None:
    """The entries and asked category of a question text, or ``None`` if it is not one.

    >>> parse_question("I have two apples and a drum. How many fruits do I have?")[1]
    'fruits'
    """
    asked = QUESTION.search(text)
    start = text.find("I have ")
    if asked is None or start < 0:
        return None
    listed = text[start + len("I have ") : asked.start()].strip().rstrip(".")
    entries = [_entry(part) for part in re.split(r",\s*(?:and\s+)?|\s+and\s+", listed)]
    if not entries or any(e is None for e in entries):
        return None
    return tuple(e for e in entries if e is not None), asked.group(1)


def _entry(phrase: str) -> Entry | None:
    spelled, _, noun = phrase.strip().partition(" ")
    if noun not in CATEGORY_OF:
        return None
    if spelled in ("a", "an"):
        return Entry(1, noun, spelled)
    if spelled.isdigit():
        return Entry(int(spelled), noun, spelled)
    if spelled in NUMBER_WORDS:
        return Entry(NUMBER_WORDS.index(spelled), noun, spelled)
    return None


def counted(
    entries: Sequence[Entry], category: str, rules: Collection[str]
) -> list[tuple[Entry, int]]:
    """What the task model counts: each entry it includes with the value it reads."""
    included = [e for e in entries if "R2" not in rules or CATEGORY_OF[e.noun] == category]
    return [(e, e.count if "R1" in rules or not e.as_word else 1) for e in included]


def answer(entries: Sequence[Entry], category: str, rules: Collection[str], floor: bool) -> int:
    """The number the task model answers under ``rules``."""
    truth = sum(e.count for e in entries if CATEGORY_OF[e.noun] == category)
    got = sum(value for _, value in counted(entries, category, rules))
    hurried = "H1" in rules and sum(e.count for e in entries) > H1_LIMIT
    return got + 1 if (floor or hurried) and got == truth else got


def correct(item: Item, rules: Collection[str]) -> bool:
    """Whether the task model answers ``item`` right under ``rules`` (R3 is the format)."""
    if "R3" not in rules:
        return False
    return answer(item.entries, item.category, rules, item.floor) == int(item.expected)


def accuracy(rules: Collection[str], items: Sequence[Item]) -> float:
    """The exact fraction of ``items`` answered right with ``rules`` in the prompt."""
    return sum(correct(item, rules) for item in items) / len(items)


def needs(item: Item) -> frozenset[str]:
    """The trainable rules ``item`` needs (from its content, not from the policy)."""
    relevant = [e for e in item.entries if CATEGORY_OF[e.noun] == item.category]
    wanted = {"R1"} if any(e.as_word and e.count > 1 for e in relevant) else set()
    if len(relevant) < len(item.entries):
        wanted.add("R2")
    return frozenset(wanted)


def generate(n: int, seed: int = 0) -> list[Item]:
    """``n`` items whose need sets follow R1 50% x R2 70% exactly (up to rounding)."""
    rng = random.Random(f"task-a:{seed}")
    wanted = joint_quota(n, NEEDS)
    rng.shuffle(wanted)
    return [_item(rng, f"{seed}:{i}", need) for i, need in enumerate(wanted)]


def _item(rng: random.Random, key: str, wanted: frozenset[str]) -> Item:
    for attempt in range(10_000):
        item = _draw(rng, canary("task-a", key, str(attempt)), "R1" in wanted, "R2" in wanted)
        if needs(item) == wanted and _consistent(item, wanted):
            return item
    raise AssertionError(f"no item found for {key}")  # pragma: no cover - never with these odds


def _consistent(item: Item, wanted: frozenset[str]) -> bool:
    """Right exactly when every needed rule is present (the floor aside)."""
    for size in range(len(TRAINABLE) + 1):
        for state in combinations(TRAINABLE, size):
            right = answer(item.entries, item.category, {*state, "R3"}, False) == int(item.expected)
            if right != wanted.issubset(state):
                return False
    return True


def _draw(rng: random.Random, ref: str, r1: bool, r2: bool) -> Item:
    """A candidate item: 1-3 entries of the asked category, 1-2 others when R2 is needed.

    With R1 needed the first asked entry is a number word above one; without it no asked
    entry is (entries of other categories may be).
    """
    category = rng.choice(sorted(CATEGORIES))
    others = [c for c in sorted(CATEGORIES) if c != category]
    asked = rng.sample(CATEGORIES[category], rng.randint(1, 3))
    extra = [rng.choice(CATEGORIES[rng.choice(others)]) for _ in range(rng.randint(1, 2) * r2)]
    entries = [_spell(rng, pair, _word_rule(r1, i)) for i, pair in enumerate(asked)]
    entries += [_spell(rng, pair, None) for pair in extra]
    rng.shuffle(entries)
    return Item(tuple(_distinct(entries)), category, ref)


def _word_rule(r1: bool, index: int) -> bool | None:
    if not r1:
        return False
    return True if index == 0 else None


def _spell(rng: random.Random, pair: tuple[str, str], word: bool | None) -> Entry:
    """An entry; ``word`` True forces a number word above one, False forbids one, None: either."""
    count = rng.randint(2, 4) if word else (1 if rng.random() < 0.4 else rng.randint(2, 4))
    if count == 1:
        return Entry(1, pair[0], "an" if pair[0][0] in "aeiou" else "a")
    as_word = word if word is not None else rng.random() < 0.5
    return Entry(count, pair[1], NUMBER_WORDS[count] if as_word else str(count))


def _distinct(entries: list[Entry]) -> list[Entry]:
    """The entries without a second mention of the same thing."""
    seen: set[str] = set()
    kept = []
    for entry in entries:
        if SINGULAR[entry.noun] not in seen:
            seen.add(SINGULAR[entry.noun])
            kept.append(entry)
    return kept
