"""One dataset split into train, val and test: the same seed gives the same parts, the parts
never share an item, and the sizes are what the split asks for."""

from __future__ import annotations

import pytest

from app.services.optimization.split import Split, split_counts, split_indices


def test_the_same_seed_gives_the_same_parts() -> None:
    split = Split(train=0.2, val=0.3, test=0.5, seed=7)
    assert split_indices(250, split) == split_indices(
        250, Split(train=0.2, val=0.3, test=0.5, seed=7)
    )


def test_the_parts_are_pinned_for_a_seed() -> None:
    # Pinned: a change of shuffle would move items between a stored run's train and test.
    parts = split_indices(10, Split(train=0.2, val=0.3, test=0.5, seed=7))
    assert (parts.train, parts.val, parts.test) == ((5, 9), (1, 3, 4), (0, 2, 6, 7, 8))


def test_another_seed_gives_other_parts() -> None:
    a = split_indices(100, Split(train=0.5, val=0.5, seed=1))
    b = split_indices(100, Split(train=0.5, val=0.5, seed=2))
    assert a.train != b.train


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 10, 99, 250])
@pytest.mark.parametrize(
    "split",
    [
        Split(train=0.2, val=0.3, test=0.5, seed=7),
        Split(train=0.1, val=0.2, seed=3),
        Split(train=1.0, val=0.0),
        Split(train=1 / 3, val=1 / 3, test=1 / 3, seed=11),
    ],
)
def test_parts_are_disjoint_sorted_and_sized_as_counted(n: int, split: Split) -> None:
    parts = split_indices(n, split)
    train, val, test = set(parts.train), set(parts.val), set(parts.test)
    assert not train & val
    assert not train & test
    assert not val & test
    assert train | val | test <= set(range(n))
    assert all(list(part) == sorted(part) for part in (parts.train, parts.val, parts.test))
    assert (len(train), len(val), len(test)) == split_counts(n, split)


def test_fractions_adding_up_to_one_use_every_item() -> None:
    for n in range(0, 40):
        assert sum(split_counts(n, Split(train=0.1, val=0.2, test=0.7))) == n


def test_fractions_round_to_the_nearest_item() -> None:
    assert split_counts(10, Split(train=0.2, val=0.3, test=0.5)) == (2, 3, 5)
    assert split_counts(250, Split(train=0.2, val=0.4, test=0.4)) == (50, 100, 100)
    assert split_counts(7, Split(train=0.5, val=0.25)) == (4, 1, 0)  # the rest is left out


def test_counts_take_that_many_items() -> None:
    assert split_counts(250, Split(train=50, val=100, test=100)) == (50, 100, 100)
    parts = split_indices(250, Split(train=50, val=100, test=100, seed=0))
    assert (len(parts.train), len(parts.val), len(parts.test)) == (50, 100, 100)


def test_counts_larger_than_the_dataset_are_an_error() -> None:
    with pytest.raises(ValueError, match="asks for 12 items; the dataset has 10"):
        split_counts(10, Split(train=6, val=6))
