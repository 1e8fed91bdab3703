"""The optimizer's phrasebook: for each diagnosis it can act on, two or three instructions
that fix it (one sentence each). Written independently of the task model's detectors in
``rules.py``; a test checks that every entry is understood there, as a real model would.

>>> len(PHRASEBOOK["number_words"]) >= 2
True
"""

from __future__ import annotations

PHRASEBOOK: dict[str, tuple[str, ...]] = {
    "number_words": (
        "Write every number word as digits before counting (three becomes 3).",
        "Convert number words such as 'five' into numerals before you add them up.",
        "Turn spelled-out numbers into digits first, so 'two' is read as 2.",
    ),
    "other_category": (
        "Count only the objects that belong to the category the question asks about.",
        "Ignore every object that is not of the requested kind.",
        "Include just the things in the asked-for category and skip all others.",
    ),
    "answer_line": (
        "End with a final line of the form 'Answer: N'.",
        "Finish with the line 'Answer: N', where N is the number.",
    ),
    "unlisted": (
        "List every object with its count before giving the total.",
        "Write out each object and how many there are, then add them.",
    ),
    "addition": (
        "Add the counts carefully and check the sum once more.",
        "Double-check the total by adding the numbers a second time.",
    ),
    "units": (
        "Convert every quantity to a common unit: grams to kilograms and millilitres to litres.",
        "Express quantities in kg or l, dividing grams and millilitres by 1000.",
        "Normalise units before reporting, so g becomes kg and ml becomes l.",
    ),
    "fees": (
        "Leave shipping fees out of the price.",
        "Report the item price without any delivery or shipping charge.",
        "Do not include postage or shipping costs in the price.",
    ),
    "sticker": (
        "Compare the price per unit (price divided by quantity), not the sticker price.",
        "Decide by unit price: divide each price by its quantity and pick the lower one.",
        "Choose the product with the lower price per unit of quantity.",
    ),
    "letter": (
        "End with a final line 'Answer: A' or 'Answer: B'.",
        "Reply with one letter on a final line, as in 'Answer: A'.",
    ),
}

HARMFUL = "Answer immediately, don't list the items."
