"""The critic's diagnoses: each one a stable key phrase inside a sentence of prose.

The critic writes these sentences; the optimizer counts the key phrases in the feedback it
is sent (``phrasebook.py`` maps a diagnosis to instructions). Neither side reads the task
model's rule detectors.

>>> key_of(NUMBER_WORDS) in NUMBER_WORDS.text
True
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A named failure: ``key`` is the phrase that identifies it inside ``text``."""

    name: str
    key: str
    text: str


NUMBER_WORDS = Diagnosis(
    "number_words",
    "number words were not converted to digits",
    "Some counts were read wrong: number words were not converted to digits, so an entry "
    "like '{example}' was counted as one object.",
)
OTHER_CATEGORY = Diagnosis(
    "other_category",
    "objects outside the asked category",
    "The count included objects outside the asked category (e.g. '{example}'); only the "
    "category the question names should be counted.",
)
ANSWER_LINE = Diagnosis(
    "answer_line",
    "no final answer line",
    "The reply had no final answer line in the required 'Answer: ...' format.",
)
UNLISTED = Diagnosis(
    "unlisted",
    "answered without listing the objects",
    "The reply answered without listing the objects, and the total came out wrong.",
)
ADDITION = Diagnosis(
    "addition",
    "the counts were added up wrong",
    "Each entry was read correctly but the counts were added up wrong.",
)
UNEXPLAINED = Diagnosis(
    "unexplained",
    "does not match the expected answer",
    "The total does not match the expected answer, and the listed entries do not explain "
    "the difference.",
)
MISMATCH = Diagnosis(
    "mismatch",
    "feedback quotes an answer this output did not give",
    "The feedback quotes an answer this output did not give, so it cannot say what to change.",
)
UNITS = Diagnosis(
    "units",
    "quantity was not converted to a common unit",
    "The quantity was not converted to a common unit: '{example}' should be given in kg or l.",
)
FEES = Diagnosis(
    "fees",
    "shipping fee was included in the price",
    "The shipping fee was included in the price ({example}); the item price alone is wanted.",
)
STICKER = Diagnosis(
    "sticker",
    "compared sticker prices instead of price per unit",
    "The decision compared sticker prices instead of price per unit: by price divided by "
    "quantity the answer would be {example}.",
)
BAD_INPUTS = Diagnosis(
    "bad_inputs",
    "the extracted values led to a wrong answer",
    "This step's answer follows from what it was given, but the extracted values led to a "
    "wrong answer (expected {example}); check the price and quantity reported here.",
)
LETTER = Diagnosis(
    "letter",
    "no final one-letter answer line",
    "The reply had no final one-letter answer line of the form 'Answer: A' or 'Answer: B'.",
)

ALL = (
    NUMBER_WORDS,
    OTHER_CATEGORY,
    ANSWER_LINE,
    UNLISTED,
    ADDITION,
    UNITS,
    FEES,
    STICKER,
    BAD_INPUTS,
    LETTER,
)


def key_of(diagnosis: Diagnosis) -> str:
    """The phrase the optimizer looks for."""
    return diagnosis.key


def say(diagnosis: Diagnosis, example: str = "") -> str:
    """The diagnosis as the critic writes it."""
    return diagnosis.text.format(example=example)
