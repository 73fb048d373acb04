"""Tests of the stratified paired bootstrap in app.stats.bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.scoring.categories import ALL_CATEGORIES, AXIS_OF_CATEGORY, UEG_CATEGORIES
from app.stats.binomial import difference_of_means
from app.stats.bootstrap import (
    EntryScores,
    Estimate,
    Layout,
    bootstrap_scores,
    percentile_bounds,
)

ITEMS_PER_CATEGORY = 100


def realunify_layout(items_per_category: int = ITEMS_PER_CATEGORY) -> Layout:
    return Layout(
        categories=ALL_CATEGORIES,
        axis_of=dict(AXIS_OF_CATEGORY),
        item_category=np.repeat(np.arange(len(ALL_CATEGORIES)), items_per_category),
    )


def random_outcomes(
    accuracies: list[float], seed: int, items_per_category: int = ITEMS_PER_CATEGORY
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    items = items_per_category * len(ALL_CATEGORIES)
    return (rng.random((len(accuracies), items)) < np.array(accuracies)[:, None]).astype(float)


def all_estimates(scores: EntryScores) -> dict[str, Estimate]:
    return {**scores.categories, **scores.axes, "total": scores.total}


def test_intervals_contain_point_estimates() -> None:
    outcomes = random_outcomes([0.2, 0.5, 0.8, 0.95], seed=1)
    entries, _ = bootstrap_scores(outcomes, realunify_layout(), resamples=2000, seed=3)

    for entry in entries:
        for key, estimate in all_estimates(entry).items():
            assert estimate.value is not None, key
            assert estimate.interval is not None, key
            assert estimate.interval.low <= estimate.value, key
            assert estimate.value <= estimate.interval.high, key
            assert estimate.interval.low < estimate.interval.high, key
            assert estimate.p_value is None, key


def test_point_estimates_are_plain_means() -> None:
    outcomes = random_outcomes([0.3, 0.7], seed=2)
    entries, _ = bootstrap_scores(outcomes, realunify_layout(), resamples=200, seed=0)

    by_category = outcomes.reshape(2, len(ALL_CATEGORIES), ITEMS_PER_CATEGORY).mean(axis=2)
    for row, entry in enumerate(entries):
        for index, name in enumerate(ALL_CATEGORIES):
            assert entry.categories[name].value == pytest.approx(by_category[row, index])
        ueg = by_category[row, : len(UEG_CATEGORIES)].mean()
        geu = by_category[row, len(UEG_CATEGORIES) :].mean()
        assert entry.axes["UEG"].value == pytest.approx(ueg)
        assert entry.axes["GEU"].value == pytest.approx(geu)
        assert entry.total.value == pytest.approx(by_category[row].mean())
        assert list(entry.categories) == list(ALL_CATEGORIES)
        assert list(entry.axes) == ["UEG", "GEU"]


def test_axis_weighs_categories_equally() -> None:
    layout = Layout(
        categories=("small", "large"),
        axis_of={"small": "UEG", "large": "UEG"},
        item_category=np.array([0] * 10 + [1] * 90),
    )
    outcomes = np.array([[1.0] * 10 + [0.0] * 90])
    entries, _ = bootstrap_scores(outcomes, layout, resamples=100)

    assert entries[0].axes["UEG"].value == pytest.approx(0.5)
    assert entries[0].total.value == pytest.approx(0.5)
    assert entries[0].axes["UEG"].interval is not None
    assert entries[0].axes["UEG"].interval.low == pytest.approx(0.5)
    assert entries[0].axes["UEG"].interval.high == pytest.approx(0.5)


def test_same_seed_same_numbers() -> None:
    outcomes = random_outcomes([0.4, 0.6, 0.5], seed=4)
    pairs = [(0, 1), (1, 2)]
    first = bootstrap_scores(outcomes, realunify_layout(), resamples=1000, seed=11, pairs=pairs)
    second = bootstrap_scores(outcomes, realunify_layout(), resamples=1000, seed=11, pairs=pairs)

    assert first == second


def test_other_seed_other_numbers() -> None:
    outcomes = random_outcomes([0.4, 0.6, 0.5], seed=4)
    first, _ = bootstrap_scores(outcomes, realunify_layout(), resamples=1000, seed=11)
    second, _ = bootstrap_scores(outcomes, realunify_layout(), resamples=1000, seed=12)

    for entry_first, entry_second in zip(first, second, strict=True):
        assert entry_first.total.value == entry_second.total.value
        assert entry_first.total.interval != entry_second.total.interval


def test_lower_level_gives_narrower_interval() -> None:
    outcomes = random_outcomes([0.5], seed=3)
    wide, _ = bootstrap_scores(outcomes, realunify_layout(), resamples=2000, level=0.95)
    narrow, _ = bootstrap_scores(outcomes, realunify_layout(), resamples=2000, level=0.5)

    wide_interval, narrow_interval = wide[0].total.interval, narrow[0].total.interval
    assert wide_interval is not None
    assert narrow_interval is not None
    assert wide_interval.low < narrow_interval.low
    assert narrow_interval.high < wide_interval.high


@pytest.mark.parametrize("resamples", [1, 2, 7, 1000, 10_001])
def test_percentile_bounds_match_numpy(resamples: int) -> None:
    rng = np.random.default_rng(resamples)
    samples = rng.normal(size=(5, resamples))
    expected = np.quantile(samples, [0.025, 0.975], axis=1)

    low, high = percentile_bounds(samples.copy(), (0.025, 0.975))

    np.testing.assert_allclose(low, expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(high, expected[1], rtol=1e-12, atol=1e-12)


def test_coverage_near_nominal_level() -> None:
    """About 95 % of the intervals of simulated entries contain the true accuracy."""
    true_accuracy = 0.6
    simulations = 200
    category_hits = 0
    total_hits = 0
    for simulation in range(simulations):
        outcomes = random_outcomes([true_accuracy], seed=1000 + simulation)
        entries, _ = bootstrap_scores(outcomes, realunify_layout(), resamples=1000, seed=simulation)
        for estimate in entries[0].categories.values():
            assert estimate.interval is not None
            category_hits += estimate.interval.low <= true_accuracy <= estimate.interval.high
        interval = entries[0].total.interval
        assert interval is not None
        total_hits += interval.low <= true_accuracy <= interval.high

    category_coverage = category_hits / (simulations * len(ALL_CATEGORIES))
    total_coverage = total_hits / simulations
    assert 0.90 <= category_coverage <= 0.99
    assert 0.90 <= total_coverage <= 0.99


def test_identical_entries_differ_by_zero() -> None:
    outcomes = random_outcomes([0.55], seed=5)
    outcomes = np.vstack([outcomes, outcomes])
    _, differences = bootstrap_scores(outcomes, realunify_layout(), resamples=500, pairs=[(0, 1)])

    for key, estimate in all_estimates(differences[(0, 1)]).items():
        assert estimate.value == 0.0, key
        assert estimate.interval is not None, key
        assert estimate.interval.low == 0.0, key
        assert estimate.interval.high == 0.0, key
        assert estimate.p_value == 1.0, key


def test_difference_is_second_minus_first() -> None:
    outcomes = np.vstack([np.zeros(1000), np.ones(1000)])
    _, differences = bootstrap_scores(
        outcomes, realunify_layout(), resamples=100, pairs=[(0, 1), (1, 0)]
    )

    assert differences[(0, 1)].total.value == 1.0
    assert differences[(1, 0)].total.value == -1.0
    assert differences[(0, 1)].axes["GEU"].value == 1.0
    assert differences[(0, 1)].categories["code_to_image"].value == 1.0


def test_superset_difference_is_non_negative() -> None:
    weaker = random_outcomes([0.4], seed=6)[0]
    rng = np.random.default_rng(7)
    stronger = np.maximum(weaker, (rng.random(weaker.size) < 0.3).astype(float))
    outcomes = np.vstack([weaker, stronger])
    _, differences = bootstrap_scores(outcomes, realunify_layout(), resamples=2000, pairs=[(0, 1)])

    difference = differences[(0, 1)]
    for key, estimate in all_estimates(difference).items():
        assert estimate.value is not None, key
        assert estimate.value > 0.0, key
        assert estimate.interval is not None, key
        assert estimate.interval.low >= 0.0, key
    assert difference.total.p_value is not None
    assert difference.total.p_value < 0.001


def test_paired_narrower_than_unpaired() -> None:
    """Two positively correlated entries: the paired interval beats two separate ones."""
    base = random_outcomes([0.6], seed=8)[0]
    rng = np.random.default_rng(9)
    flipped = np.where(rng.random(base.size) < 0.1, 1.0 - base, base)
    outcomes = np.vstack([base, flipped])
    entries, differences = bootstrap_scores(
        outcomes, realunify_layout(), resamples=2000, pairs=[(0, 1)]
    )

    first = all_estimates(entries[0])
    second = all_estimates(entries[1])
    paired = all_estimates(differences[(0, 1)])
    for key, estimate in paired.items():
        assert estimate.interval is not None, key
        first_interval, second_interval = first[key].interval, second[key].interval
        assert first_interval is not None, key
        assert second_interval is not None, key
        unpaired_width = math.hypot(
            first_interval.high - first_interval.low, second_interval.high - second_interval.low
        )
        paired_width = estimate.interval.high - estimate.interval.low
        assert paired_width < 0.75 * unpaired_width, key

    per_category = outcomes.reshape(2, len(ALL_CATEGORIES), ITEMS_PER_CATEGORY).mean(axis=2)
    counts = [ITEMS_PER_CATEGORY] * len(ALL_CATEGORIES)
    binomial = difference_of_means(list(per_category[0]), counts, list(per_category[1]), counts)
    assert binomial.interval is not None
    assert paired["total"].interval is not None
    binomial_width = binomial.interval.high - binomial.interval.low
    paired_total_width = paired["total"].interval.high - paired["total"].interval.low
    assert paired_total_width < 0.75 * binomial_width


def test_nan_makes_category_and_averages_undefined() -> None:
    outcomes = random_outcomes([0.5, 0.5], seed=10)
    broken = ALL_CATEGORIES.index("logical_reasoning")
    outcomes[0, broken * ITEMS_PER_CATEGORY + 17] = np.nan
    entries, differences = bootstrap_scores(
        outcomes, realunify_layout(), resamples=300, pairs=[(0, 1), (1, 0)]
    )

    undefined = Estimate(None, None)
    assert entries[0].categories["logical_reasoning"] == undefined
    assert entries[0].axes["UEG"] == undefined
    assert entries[0].total == undefined
    for name in ALL_CATEGORIES:
        if name != "logical_reasoning":
            assert entries[0].categories[name].interval is not None, name
    assert entries[0].axes["GEU"].interval is not None

    for key, estimate in all_estimates(entries[1]).items():
        assert estimate.interval is not None, key

    for pair in [(0, 1), (1, 0)]:
        difference = differences[pair]
        assert difference.categories["logical_reasoning"] == undefined
        assert difference.axes["UEG"] == undefined
        assert difference.total == undefined
        assert difference.axes["GEU"].interval is not None
        assert difference.axes["GEU"].p_value is not None
        assert difference.categories["world_knowledge"].interval is not None


def test_category_without_items_is_undefined() -> None:
    present = [name for name in ALL_CATEGORIES if name != "mental_tracking"]
    item_category = np.repeat([ALL_CATEGORIES.index(name) for name in present], 20)
    layout = Layout(ALL_CATEGORIES, dict(AXIS_OF_CATEGORY), item_category)
    outcomes = np.ones((1, item_category.size))
    entries, _ = bootstrap_scores(outcomes, layout, resamples=50)

    assert entries[0].categories["mental_tracking"].value is None
    assert entries[0].axes["GEU"].value is None
    assert entries[0].total.value is None
    assert entries[0].axes["UEG"].value == 1.0
    assert entries[0].categories["mental_reconstruction"].value == 1.0


def test_empty_item_universe() -> None:
    layout = Layout(ALL_CATEGORIES, dict(AXIS_OF_CATEGORY), np.array([], dtype=np.int64))
    entries, differences = bootstrap_scores(np.empty((2, 0)), layout, resamples=10, pairs=[(0, 1)])

    assert entries[0].total.value is None
    assert all(estimate.value is None for estimate in entries[1].categories.values())
    assert differences[(0, 1)].axes["UEG"].value is None


def test_no_entries() -> None:
    entries, differences = bootstrap_scores(np.empty((0, 1000)), realunify_layout(), resamples=10)

    assert entries == []
    assert differences == {}


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        (np.full((1, 1000), 0.5), "must be 0, 1 or NaN"),
        (np.ones(1000), "shape"),
        (np.ones((1, 999)), "item_category has shape"),
    ],
)
def test_invalid_outcomes_rejected(outcomes: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_scores(outcomes, realunify_layout(), resamples=10)


def test_invalid_settings_rejected() -> None:
    outcomes = np.ones((2, 1000))
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        bootstrap_scores(outcomes, realunify_layout(), resamples=10, pairs=[(0, 2)])
    with pytest.raises(ValueError, match="level"):
        bootstrap_scores(outcomes, realunify_layout(), resamples=10, level=1.0)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_scores(outcomes, realunify_layout(), resamples=0)
    layout = Layout(ALL_CATEGORIES, {"world_knowledge": "UEG"}, realunify_layout().item_category)
    with pytest.raises(ValueError, match="no axis"):
        bootstrap_scores(outcomes, layout, resamples=10)
