"""One dataset split into train, val and test: seeded, deterministic, disjoint.

Amounts are fractions of the dataset when any of them is a float (``0.2``), item counts when
all are integers (``20``). Fractions need not add up to 1 (the rest is left out); counts
need not add up to the dataset's size.

>>> split_indices(10, Split(train=0.2, val=0.3, test=0.5, seed=7)).train
(5, 9)
>>> split_counts(10, Split(train=2, val=3))
(2, 3, 0)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_SEED = 2**63 - 1
MAX_COUNT = 10_000_000
_SLACK = 1e-9  # 0.1 + 0.2 + 0.7 is 1.0000000000000002 in floats


def _amount(value: Any) -> int | float:
    """A non-negative count (int) or fraction (float in [0, 1]); booleans are neither."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("give a fraction (0.2) or a number of items (20)")
    if isinstance(value, float) and not 0.0 <= value <= 1.0:
        raise ValueError("a fraction is between 0 and 1")
    if isinstance(value, int) and not 0 <= value <= MAX_COUNT:
        raise ValueError(f"a number of items is between 0 and {MAX_COUNT:,}")
    return value


Amount = Annotated[Any, AfterValidator(_amount)]


class Split(BaseModel):
    """How one dataset is split: ``{"train": 0.2, "val": 0.3, "test": 0.5, "seed": 7}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    train: Amount
    val: Amount
    test: Amount = 0
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @model_validator(mode="after")
    def _fractions_fit(self) -> Split:
        if self.is_fractions and sum(self.amounts) > 1.0 + _SLACK:
            raise ValueError("the fractions of train, val and test add up to more than 1")
        return self

    @property
    def amounts(self) -> tuple[float, float, float]:
        return (self.train, self.val, self.test)

    @property
    def is_fractions(self) -> bool:
        return any(isinstance(amount, float) for amount in self.amounts)


@dataclass(frozen=True, slots=True)
class SplitIndices:
    """Positions of the dataset's items in each part, ascending; the parts are disjoint."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]


def split_counts(n: int, split: Split) -> tuple[int, int, int]:
    """How many of ``n`` items go to train, val and test (``ValueError`` when counts are more
    than ``n``). Fractions are rounded at the cumulative boundaries, so fractions adding up to
    1 use every item."""
    bounds = _bounds(n, split)
    return bounds[0], bounds[1] - bounds[0], bounds[2] - bounds[1]


def split_indices(n: int, split: Split) -> SplitIndices:
    """The items of each part: a shuffle of ``range(n)`` seeded by ``split.seed``, cut at the
    boundaries of :func:`split_counts`. Same ``n`` and split, same parts, on any machine."""
    order = list(range(n))
    random.Random(f"split:{split.seed}").shuffle(order)
    first, second, third = _bounds(n, split)
    parts = order[:first], order[first:second], order[second:third]
    return SplitIndices(*(tuple(sorted(part)) for part in parts))


def _bounds(n: int, split: Split) -> tuple[int, int, int]:
    if split.is_fractions:
        train, val, test = split.amounts
        cuts = (train, train + val, train + val + test)
        return tuple(min(n, round(n * cut)) for cut in cuts)  # type: ignore[return-value]
    train, val, test = (int(amount) for amount in split.amounts)
    if train + val + test > n:
        raise ValueError(f"the split asks for {train + val + test:,} items; the dataset has {n:,}")
    return train, train + val, train + val + test
