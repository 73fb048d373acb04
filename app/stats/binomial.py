"""Binomial intervals for reference rows, which only have per-category percentages.

Published results give a percentage per category and an item count (100 items per category in
RealUnify), but not the item-level outcomes. The intervals here are therefore binomial
approximations that treat each category as an independent binomial sample. They cannot be
paired the way the bootstrap pairs scored submissions, so a difference between two reference
values is unpaired and usually wider than a paired one would be.

All values are fractions in 0..1, not percentages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from app.stats.bootstrap import UNDEFINED, Estimate, Interval


def wilson_interval(successes: float, n: int, level: float = 0.95) -> Interval:
    """Compute the Wilson score interval for ``successes`` out of ``n`` trials.

    ``successes`` may be fractional, because it is usually a published percentage times the
    item count. The interval is a binomial approximation, used because item-level outcomes of
    published results are not available.

    Raises:
        ValueError: ``n`` is not positive, ``successes`` is outside 0..n or ``level`` is
            outside (0, 1).
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0.0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    z = _z_score(level)
    proportion = successes / n
    z_squared_over_n = z * z / n
    denominator = 1.0 + z_squared_over_n
    center = (proportion + z_squared_over_n / 2.0) / denominator
    half_width = (
        z / denominator * math.sqrt(proportion * (1.0 - proportion) / n + z * z / (4.0 * n * n))
    )
    # At 0 and n the exact bound is 0 or 1, which the subtraction may miss by rounding.
    low = 0.0 if successes == 0 else max(0.0, center - half_width)
    high = 1.0 if successes == n else min(1.0, center + half_width)
    return Interval(low, high)


def mean_of_proportions(
    values: Sequence[float | None], counts: Sequence[int], level: float = 0.95
) -> Estimate:
    """Estimate the mean of independent binomial proportions with a normal-approximation interval.

    This gives the axis score and the total of a reference row: ``values`` are its category
    accuracies (fractions) and ``counts`` their item counts. The variance is
    ``sum(p * (1 - p) / n) / k**2`` for ``k`` categories. The interval is a binomial
    approximation, used because item-level outcomes of published results are not available.
    It is clipped to 0..1 and has zero width when every proportion is exactly 0 or 1.

    Returns an undefined Estimate when any value is None, because averages are never taken over
    only the categories present.

    Raises:
        ValueError: the sequences are empty or differ in length, a count is not positive, a
            value is outside 0..1 or ``level`` is outside (0, 1).
    """
    z = _z_score(level)
    moments = _mean_and_variance(values, counts)
    if moments is None:
        return UNDEFINED
    mean, variance = moments
    half_width = z * math.sqrt(variance)
    return Estimate(mean, Interval(max(0.0, mean - half_width), min(1.0, mean + half_width)))


def difference_of_means(
    first_values: Sequence[float | None],
    first_counts: Sequence[int],
    second_values: Sequence[float | None],
    second_counts: Sequence[int],
    level: float = 0.95,
) -> Estimate:
    """Estimate the second mean of proportions minus the first, unpaired, with a p-value.

    Each side is a set of category accuracies (fractions) with their item counts, as in
    ``mean_of_proportions``. A single category is a sequence of length one. For stepwise minus
    direct of a reference row, pass the direct values first. The two sides are treated as
    independent, so the standard error is the root of the summed variances. The interval is
    the normal approximation, clipped to -1..1, and the two-sided p-value comes from the z
    statistic. Both are binomial approximations, used because item-level outcomes of
    published results are not available.

    Returns an undefined Estimate when any value on either side is None. ``p_value`` is 1 when
    both standard errors and the difference are zero, and None when both standard errors are
    zero but the difference is not, because the normal approximation gives no p-value there.

    Raises:
        ValueError: as ``mean_of_proportions``, for either side.
    """
    z = _z_score(level)
    first = _mean_and_variance(first_values, first_counts)
    second = _mean_and_variance(second_values, second_counts)
    if first is None or second is None:
        return UNDEFINED

    difference = second[0] - first[0]
    standard_error = math.sqrt(first[1] + second[1])
    half_width = z * standard_error
    interval = Interval(max(-1.0, difference - half_width), min(1.0, difference + half_width))
    if standard_error > 0.0:
        p_value: float | None = math.erfc(abs(difference) / standard_error / math.sqrt(2.0))
    elif difference == 0.0:
        p_value = 1.0
    else:
        p_value = None
    return Estimate(difference, interval, p_value)


def _mean_and_variance(
    values: Sequence[float | None], counts: Sequence[int]
) -> tuple[float, float] | None:
    """Return the mean of the proportions and its binomial variance, or None if one is None."""
    if len(values) != len(counts):
        raise ValueError(
            f"got {len(values)} values but {len(counts)} counts, expected one count per value"
        )
    if not values:
        raise ValueError("values must not be empty")
    for count in counts:
        if count <= 0:
            raise ValueError(f"counts must be positive, got {count}")
    present: list[float] = []
    for value in values:
        if value is None:
            return None
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                f"values must be fractions between 0 and 1, got {value}. Divide percentages by 100."
            )
        present.append(value)

    k = len(present)
    mean = sum(present) / k
    variance = sum(p * (1.0 - p) / n for p, n in zip(present, counts, strict=True)) / (k * k)
    return mean, variance


def _z_score(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 exclusive, got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)
