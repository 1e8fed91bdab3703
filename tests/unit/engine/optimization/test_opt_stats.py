"""Means, seeded bootstrap intervals, paired deltas and edit ratios."""

from __future__ import annotations

import pytest

from app.engine.optimization.edits import edit_cap, edit_ratio, text_diff
from app.engine.optimization.stats import bootstrap_interval, mean, paired


def test_mean_of_scores_and_of_nothing() -> None:
    assert mean([1.0, 0.0, 0.5, 0.5]) == 0.5
    assert mean([]) == 0.0


def test_bootstrap_interval_holds_the_mean_and_is_seeded() -> None:
    scores = [1.0] * 14 + [0.0] * 6
    low, high = bootstrap_interval(scores, seed=3)
    assert low < mean(scores) < high
    assert bootstrap_interval(scores, seed=3) == (low, high)
    assert low > 0.45
    assert high < 0.92


def test_bootstrap_interval_narrows_with_more_items() -> None:
    few = bootstrap_interval([1.0, 0.0] * 5)
    many = bootstrap_interval([1.0, 0.0] * 100)
    assert many[1] - many[0] < few[1] - few[0]


def test_constant_scores_have_no_spread() -> None:
    assert bootstrap_interval([0.25] * 10) == (0.25, 0.25)
    assert bootstrap_interval([0.5]) == (0.5, 0.5)


def test_paired_delta_is_b_minus_a_item_by_item() -> None:
    a = [0.0, 1.0, 0.0, 1.0, 0.0]
    b = [1.0, 1.0, 1.0, 1.0, 0.0]
    delta, low, high = paired(a, b)
    assert delta == pytest.approx(0.4)
    assert low <= delta <= high
    assert paired(b, a)[0] == pytest.approx(-0.4)


def test_paired_sees_a_consistent_gain_that_unpaired_means_blur() -> None:
    a = [i / 10 for i in range(10)]
    b = [x + 0.05 for x in a]
    assert paired(a, b)[1:] == pytest.approx((0.05, 0.05))


def test_paired_needs_the_same_items() -> None:
    with pytest.raises(ValueError, match="length"):
        paired([1.0, 0.0], [1.0])


def test_edit_ratio_is_normalized_levenshtein() -> None:
    assert edit_ratio("same", "same") == 0.0
    assert edit_ratio("abcd", "wxyz") == 1.0
    assert edit_ratio("kitten", "sitting") == pytest.approx(3 / 7)


def test_edit_cap_follows_conservatism() -> None:
    assert [edit_cap(c) for c in (0.0, 0.5, 1.0)] == [1.0, 0.7, 0.4]


def test_text_diff_shows_the_changed_lines() -> None:
    assert text_diff("a", "a") == ""
    assert "+Use digits." in text_diff("Count.", "Count.\nUse digits.")
