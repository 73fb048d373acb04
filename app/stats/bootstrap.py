"""Stratified paired bootstrap for leaderboard entries scored item by item.

Each entry is one row of an outcome matrix over a shared item universe. The bootstrap resamples
the items of each category with replacement and applies the same resampled items to every entry,
so differences between entries (stepwise minus direct of one model, or model A minus model B) are
paired. Intervals are percentile intervals over the resamples. Point estimates are the plain
means of the observed outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]


@dataclass(frozen=True)
class Interval:
    """Closed interval ``[low, high]``, in the unit of the estimate it belongs to."""

    low: float
    high: float


@dataclass(frozen=True)
class Estimate:
    """Point estimate with its interval. All fields are None when the estimate is undefined.

    ``value`` is a fraction in 0..1 for accuracies and a difference of fractions for pairs.
    ``p_value`` is set only on differences: a two-sided test of a zero difference.
    """

    value: float | None
    interval: Interval | None
    p_value: float | None = None


UNDEFINED = Estimate(None, None)


@dataclass(frozen=True)
class Layout:
    """Category structure of the item universe.

    ``item_category[k]`` is the index into ``categories`` of item ``k``. A category without
    items is undefined for every entry, and so are its axis and the total.
    """

    categories: tuple[str, ...]
    axis_of: dict[str, str]
    item_category: npt.NDArray[np.integer]


@dataclass(frozen=True)
class EntryScores:
    """Category accuracies, axis means and total of one entry, or of one pair's difference."""

    categories: dict[str, Estimate]
    axes: dict[str, Estimate]
    total: Estimate


def bootstrap_scores(
    outcomes: npt.ArrayLike,
    layout: Layout,
    *,
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    pairs: Sequence[tuple[int, int]] = (),
) -> tuple[list[EntryScores], dict[tuple[int, int], EntryScores]]:
    """Estimate each entry's scores with percentile intervals from a stratified paired bootstrap.

    ``outcomes`` has shape (entries, items) with values 0, 1 or NaN. A NaN makes its category
    undefined for that entry, and with it the entry's axis and total, because averages are never
    taken over only the categories present. An axis is the mean of its categories and the total
    the mean of all categories, so every category weighs the same whatever its item count.

    For each ``(i, j)`` in ``pairs`` the second result maps ``(i, j)`` to the difference entry
    ``j`` minus entry ``i``, with a paired interval and a two-sided bootstrap p-value. The
    p-value is ``min(1, 2 * min(below, above))``, where ``below`` is
    ``(1 + resamples with difference <= 0) / (1 + resamples)`` and ``above`` the same for
    ``>= 0``. The +1 terms keep it above zero, because a finite number of resamples cannot
    show a probability of zero.

    The same inputs and seed give the same numbers on every call.

    Raises:
        ValueError: the matrix, layout, pairs, ``resamples`` or ``level`` is invalid. The
            message names the value.
    """
    matrix = _validate_outcomes(outcomes, layout)
    _validate_settings(resamples, level)
    pair_array = _validate_pairs(pairs, matrix.shape[0])
    tail = (1.0 - level) / 2.0
    scorer = _Scorer(pair_array, (tail, 1.0 - tail))
    rng = np.random.default_rng(seed)
    entry_count = matrix.shape[0]
    axis_names = _axis_names(layout)

    # Per axis, the sum of its category means: observed, and in every resample. Both sums add
    # the same terms in the same order, so a resample that repeats the observed items gives
    # exactly the observed value. NaN in the observed sum marks the axis undefined.
    observed_sums = {axis: np.zeros(entry_count) for axis in axis_names}
    resampled_sums = {axis: np.zeros((entry_count, resamples)) for axis in axis_names}
    scratch = np.empty((entry_count, resamples))
    category_scores: dict[str, tuple[list[Estimate], list[Estimate]]] = {}
    for index, name in enumerate(layout.categories):
        axis = layout.axis_of[name]
        items = np.flatnonzero(layout.item_category == index)
        if items.size == 0:
            observed_sums[axis][:] = np.nan
            category_scores[name] = scorer.undefined(entry_count)
            continue

        block = matrix[:, items]
        # A row with a NaN gets a NaN count, which marks the category undefined for that entry.
        observed = block.sum(axis=1)
        counts = _resampled_counts(np.nan_to_num(block, nan=0.0), rng, resamples)
        observed_sums[axis] += observed / items.size
        np.divide(counts, items.size, out=scratch, dtype=np.float64)
        resampled_sums[axis] += scratch
        category_scores[name] = scorer.estimate(observed, counts, items.size)
    del scratch

    axis_scores: dict[str, tuple[list[Estimate], list[Estimate]]] = {}
    total_observed = np.zeros(entry_count)
    total_resampled = np.zeros((entry_count, resamples))
    for axis in axis_names:
        member_count = sum(1 for name in layout.categories if layout.axis_of[name] == axis)
        observed, samples = observed_sums.pop(axis), resampled_sums.pop(axis)
        total_observed += observed
        total_resampled += samples
        axis_scores[axis] = scorer.estimate(observed, samples, member_count)
        del samples

    if layout.categories:
        total_scores = scorer.estimate(total_observed, total_resampled, len(layout.categories))
    else:
        total_scores = scorer.undefined(entry_count)

    entries = [
        _entry_scores(category_scores, axis_scores, total_scores, row, side=0)
        for row in range(entry_count)
    ]
    differences = {
        (int(i), int(j)): _entry_scores(category_scores, axis_scores, total_scores, k, side=1)
        for k, (i, j) in enumerate(pair_array)
    }
    return entries, differences


class _Scorer:
    """Turns observed and resampled counts or sums into estimates for entries and pairs."""

    def __init__(self, pairs: npt.NDArray[np.intp], quantiles: tuple[float, float]) -> None:
        self.first = pairs[:, 0]
        self.second = pairs[:, 1]
        self.quantiles = quantiles

    def estimate(
        self, observed: FloatArray, samples: npt.NDArray[np.floating], divisor: int
    ) -> tuple[list[Estimate], list[Estimate]]:
        """Estimate entries and pair differences. ``samples`` is partitioned in place."""
        differences = _summarise(
            observed[self.second] - observed[self.first],
            samples[self.second] - samples[self.first],
            self.quantiles,
            divisor=divisor,
            with_p_value=True,
        )
        entries = _summarise(observed, samples, self.quantiles, divisor=divisor)
        return entries, differences

    def undefined(self, entry_count: int) -> tuple[list[Estimate], list[Estimate]]:
        return [UNDEFINED] * entry_count, [UNDEFINED] * len(self.first)


def _entry_scores(
    category_scores: dict[str, tuple[list[Estimate], list[Estimate]]],
    axis_scores: dict[str, tuple[list[Estimate], list[Estimate]]],
    total_scores: tuple[list[Estimate], list[Estimate]],
    row: int,
    *,
    side: int,
) -> EntryScores:
    """Collect row ``row`` of the entries (``side=0``) or of the pair differences (``side=1``)."""
    return EntryScores(
        categories={name: scores[side][row] for name, scores in category_scores.items()},
        axes={axis: scores[side][row] for axis, scores in axis_scores.items()},
        total=total_scores[side][row],
    )


def _validate_outcomes(outcomes: npt.ArrayLike, layout: Layout) -> FloatArray:
    matrix = np.asarray(outcomes, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(
            f"outcomes must have shape (entries, items), got {matrix.ndim} dimension(s)"
        )
    valid = (matrix == 0.0) | (matrix == 1.0) | np.isnan(matrix)
    if not valid.all():
        row, column = np.argwhere(~valid)[0]
        raise ValueError(
            f"outcomes must be 0, 1 or NaN, got {matrix[row, column]!r} "
            f"at entry {row}, item {column}"
        )

    item_category = np.asarray(layout.item_category)
    if item_category.shape != (matrix.shape[1],):
        raise ValueError(
            f"layout.item_category has shape {item_category.shape}, "
            f"expected ({matrix.shape[1]},), one category index per item column"
        )
    if item_category.size and not np.issubdtype(item_category.dtype, np.integer):
        raise ValueError(
            f"layout.item_category must contain integers, got dtype {item_category.dtype}"
        )
    out_of_range = (item_category < 0) | (item_category >= len(layout.categories))
    if out_of_range.any():
        raise ValueError(
            f"layout.item_category contains {item_category[out_of_range][0]}, outside "
            f"0..{len(layout.categories) - 1} for {len(layout.categories)} categories"
        )
    if len(set(layout.categories)) != len(layout.categories):
        raise ValueError(f"layout.categories contains duplicates: {layout.categories}")
    missing = [name for name in layout.categories if name not in layout.axis_of]
    if missing:
        raise ValueError(f"layout.axis_of has no axis for categories {missing}")
    return matrix


def _validate_settings(resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 exclusive, got {level}")


def _validate_pairs(pairs: Sequence[tuple[int, int]], entry_count: int) -> npt.NDArray[np.intp]:
    pair_array = np.asarray(list(pairs), dtype=np.intp).reshape(-1, 2)
    out_of_range = (pair_array < 0) | (pair_array >= entry_count)
    if out_of_range.any():
        bad = pair_array[out_of_range.any(axis=1)][0]
        raise ValueError(
            f"pair {tuple(int(x) for x in bad)} names an entry outside 0..{entry_count - 1}"
        )
    return pair_array


def _axis_names(layout: Layout) -> tuple[str, ...]:
    """Axes in the order their first category appears in ``layout.categories``."""
    return tuple(dict.fromkeys(layout.axis_of[name] for name in layout.categories))


def _resampled_counts(
    block: FloatArray, rng: np.random.Generator, resamples: int
) -> npt.NDArray[np.float32]:
    """Correct-item counts of every entry in every resample of the block's items.

    Returns shape (entries, resamples). Row ``b`` of the weight matrix counts how often each
    item was drawn in resample ``b``, which has the multinomial distribution of drawing
    ``n`` items with replacement. The counts are whole numbers up to ``n``, so float32 represents
    them exactly and the matrix product runs at float32 speed.
    """
    item_count = block.shape[1]
    draws = rng.integers(0, item_count, size=(resamples, item_count))
    draws += np.arange(resamples)[:, None] * item_count
    weights = np.bincount(draws.ravel(), minlength=resamples * item_count)
    weights = weights.reshape(resamples, item_count).astype(np.float32)
    product: npt.NDArray[np.float32] = block.astype(np.float32) @ weights.T
    return product


def _summarise(
    observed: FloatArray,
    samples: npt.NDArray[np.floating],
    quantiles: tuple[float, float],
    *,
    divisor: int,
    with_p_value: bool = False,
) -> list[Estimate]:
    """Build one Estimate per row from observed and resampled counts or sums.

    Each row's value is ``observed[r] / divisor`` and its interval the percentile interval of
    ``samples[r] / divisor``. ``samples`` is partitioned in place. A row whose observed value is
    NaN is undefined.
    """
    p_values: FloatArray | None = None
    if with_p_value:
        p_values = _two_sided_p_values(samples)
    lows, highs = percentile_bounds(samples, quantiles)

    estimates: list[Estimate] = []
    for row, value in enumerate(observed):
        if math.isnan(value):
            estimates.append(UNDEFINED)
            continue
        interval = Interval(float(lows[row] / divisor), float(highs[row] / divisor))
        p_value = None if p_values is None else float(p_values[row])
        estimates.append(Estimate(float(value / divisor), interval, p_value))
    return estimates


def _two_sided_p_values(differences: npt.NDArray[np.floating]) -> FloatArray:
    resamples = differences.shape[1]
    at_most_zero = np.count_nonzero(differences <= 0, axis=1)
    at_least_zero = np.count_nonzero(differences >= 0, axis=1)
    smaller_tail = (np.minimum(at_most_zero, at_least_zero) + 1) / (resamples + 1)
    p_values: FloatArray = np.minimum(1.0, 2.0 * smaller_tail)
    return p_values


def percentile_bounds(
    samples: npt.NDArray[np.floating], quantiles: tuple[float, float]
) -> tuple[FloatArray, FloatArray]:
    """Compute two quantiles of each row, partitioning ``samples`` in place.

    The result equals ``np.quantile(samples, quantiles, axis=1)`` with numpy's default
    ``linear`` method, up to floating-point rounding. A partial sort around the four order
    statistics involved is faster than a full quantile call, and working in place saves a
    copy of an (entries, resamples) array. The interpolation runs in float64.
    """
    resamples = samples.shape[1]
    positions = [q * (resamples - 1) for q in quantiles]
    below = [math.floor(position) for position in positions]
    kth = sorted({min(k, resamples - 1) for b in below for k in (b, b + 1)})
    samples.partition(kth, axis=1)

    bounds: list[FloatArray] = []
    for position, index in zip(positions, below, strict=True):
        lower = samples[:, index].astype(np.float64)
        upper = samples[:, min(index + 1, resamples - 1)].astype(np.float64)
        bounds.append(lower + (position - index) * (upper - lower))
    return bounds[0], bounds[1]
