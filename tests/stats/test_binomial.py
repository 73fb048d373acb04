"""Tests of the binomial approximations for reference rows in app.stats.binomial."""

from __future__ import annotations

import math

import pytest

from app.stats.binomial import difference_of_means, mean_of_proportions, wilson_interval
from app.stats.bootstrap import Estimate

# 95 % Wilson score intervals (z = 1.959964) for n = 100, rounded to four places.
WILSON_TABLE = [
    (0, 0.0, 0.0370),
    (1, 0.0018, 0.0545),
    (50, 0.4038, 0.5962),
    (99, 0.9455, 0.9982),
    (100, 0.9630, 1.0),
]


@pytest.mark.parametrize(("successes", "low", "high"), WILSON_TABLE)
def test_wilson_known_values(successes: int, low: float, high: float) -> None:
    interval = wilson_interval(successes, 100)

    assert interval.low == pytest.approx(low, abs=5e-5)
    assert interval.high == pytest.approx(high, abs=5e-5)


def test_wilson_bounds_exact_at_extremes() -> None:
    assert wilson_interval(0, 100).low == 0.0
    assert wilson_interval(100, 100).high == 1.0


def test_wilson_fractional_successes_between_neighbours() -> None:
    below, middle, above = (
        wilson_interval(32, 100),
        wilson_interval(32.5, 100),
        wilson_interval(33, 100),
    )

    assert below.low < middle.low < above.low
    assert below.high < middle.high < above.high


def test_wilson_lower_level_narrower() -> None:
    wide = wilson_interval(40, 100, 0.95)
    narrow = wilson_interval(40, 100, 0.80)

    assert wide.low < narrow.low
    assert narrow.high < wide.high


@pytest.mark.parametrize(
    ("successes", "n", "level", "message"),
    [(1, 0, 0.95, "n must be positive"), (101, 100, 0.95, "successes"), (5, 100, 1.5, "level")],
)
def test_wilson_invalid_input(successes: float, n: int, level: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, n, level)


def test_axis_mean_of_reference_row() -> None:
    """Six UEG categories at 50 % of 100 items: the standard error is sqrt(6 * 0.25 / 100) / 6."""
    estimate = mean_of_proportions([0.5] * 6, [100] * 6)
    half_width = 1.959964 * math.sqrt(6 * 0.25 / 100) / 6

    assert estimate.value == pytest.approx(0.5)
    assert estimate.interval is not None
    assert estimate.interval.low == pytest.approx(0.5 - half_width, abs=1e-6)
    assert estimate.interval.high == pytest.approx(0.5 + half_width, abs=1e-6)
    assert estimate.p_value is None


def test_mean_of_unequal_proportions() -> None:
    values = [0.1, 0.9, 0.45, 0.3]
    estimate = mean_of_proportions(values, [100] * 4)
    variance = sum(p * (1 - p) / 100 for p in values) / 16

    assert estimate.value == pytest.approx(0.4375)
    assert estimate.interval is not None
    assert estimate.interval.high - estimate.interval.low == pytest.approx(
        2 * 1.959964 * math.sqrt(variance), abs=1e-6
    )


def test_mean_clipped_to_unit_range() -> None:
    estimate = mean_of_proportions([0.99, 1.0], [100, 100])

    assert estimate.value is not None
    assert estimate.interval is not None
    assert estimate.interval.high == 1.0
    assert estimate.interval.low < estimate.value


def test_mean_with_missing_value_undefined() -> None:
    assert mean_of_proportions([0.5, None, 0.7], [100] * 3) == Estimate(None, None)


@pytest.mark.parametrize(
    ("values", "counts", "message"),
    [
        ([50.0, 60.0], [100, 100], "Divide percentages by 100"),
        ([0.5], [100, 100], "1 values but 2 counts, expected one count per value"),
        ([], [], "must not be empty"),
        ([0.5], [0], "counts must be positive"),
    ],
)
def test_mean_invalid_input(values: list[float], counts: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mean_of_proportions(values, counts)


def test_difference_known_z_statistic() -> None:
    """0.5 against 0.6 of 100 items: se = sqrt(0.0025 + 0.0024) = 0.07, z = 1.4286."""
    estimate = difference_of_means([0.5], [100], [0.6], [100])

    assert estimate.value == pytest.approx(0.1)
    assert estimate.interval is not None
    assert estimate.interval.low == pytest.approx(0.1 - 1.959964 * 0.07, abs=1e-6)
    assert estimate.interval.high == pytest.approx(0.1 + 1.959964 * 0.07, abs=1e-6)
    assert estimate.p_value == pytest.approx(0.15315, abs=1e-4)


def test_difference_sign_is_second_minus_first() -> None:
    direct = [0.3] * 6
    stepwise = [0.45] * 6
    gain = difference_of_means(direct, [100] * 6, stepwise, [100] * 6)
    loss = difference_of_means(stepwise, [100] * 6, direct, [100] * 6)

    assert gain.value == pytest.approx(0.15)
    assert loss.value == pytest.approx(-0.15)
    assert gain.p_value == pytest.approx(loss.p_value)
    assert gain.p_value is not None
    assert gain.p_value < 0.001


def test_difference_of_equal_means() -> None:
    estimate = difference_of_means([0.4, 0.6], [100, 100], [0.6, 0.4], [100, 100])

    assert estimate.value == pytest.approx(0.0)
    assert estimate.p_value == pytest.approx(1.0)


def test_difference_without_variance() -> None:
    same = difference_of_means([1.0], [100], [1.0], [100])
    apart = difference_of_means([0.0], [100], [1.0], [100])

    assert same.p_value == 1.0
    assert apart.value == 1.0
    assert apart.p_value is None


def test_difference_with_missing_value_undefined() -> None:
    assert difference_of_means([0.5], [100], [None], [100]) == Estimate(None, None)
