"""Intervals, gains and rank bands for leaderboard rows.

Scored submissions get a stratified paired bootstrap over items: the same resampled items serve
every row, so a model's stepwise minus direct gain, and any difference between two models, is
paired. Reference rows only have percentages, so they get binomial intervals from the item count.
Both are seeded, so a page shows the same numbers on every load.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.leaderboard.reference import ITEMS_PER_CATEGORY
from app.leaderboard.service import CategoryScore, LeaderboardRow
from app.models import BenchmarkItem, ItemVerdict
from app.scoring.categories import ALL_CATEGORIES, AXIS_OF_CATEGORY, CATEGORIES_BY_AXIS
from app.stats.binomial import difference_of_means, mean_of_proportions, wilson_interval
from app.stats.bootstrap import EntryScores, Estimate, Layout, bootstrap_scores

BOOTSTRAP_SEED = 20260304
LEVEL = 0.95
SUMMARY_KEYS = ("UEG", "GEU", "total")


@dataclass(frozen=True)
class Cell:
    """A value in percent with its 95 % interval; ``p_value`` for differences."""

    value: float | None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None

    @classmethod
    def from_estimate(cls, estimate: Estimate | None) -> Cell:
        if estimate is None or estimate.value is None:
            return cls(None)
        interval = estimate.interval
        return cls(
            100.0 * estimate.value,
            None if interval is None else 100.0 * interval.low,
            None if interval is None else 100.0 * interval.high,
            getattr(estimate, "p_value", None),
        )

    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


def add_uncertainty(
    session: Session,
    benchmark_id: int | None,
    run_id: int | None,
    rows: Sequence[LeaderboardRow],
    resamples: int,
) -> None:
    """Fill each row's intervals and stepwise-minus-direct gains (``row.cells``, ``row.gains``)."""
    scored = [row for row in rows if not row.is_reference and row.submissions]
    if scored and benchmark_id is not None and run_id is not None:
        _bootstrap_rows(session, benchmark_id, run_id, scored, resamples)
    for row in rows:
        if row.is_reference:
            _binomial_row(row)
    _reference_gains([row for row in rows if row.is_reference])


def _bootstrap_rows(
    session: Session, benchmark_id: int, run_id: int, rows: Sequence[LeaderboardRow], resamples: int
) -> None:
    pairs = _protocol_pairs(rows)
    entries, differences = bootstrap_rows(session, benchmark_id, run_id, rows, resamples, pairs)
    for row, entry in zip(rows, entries, strict=True):
        row.cells = cells_of(entry)
    for (direct, stepwise), difference in differences.items():
        gains = cells_of(difference)
        rows[direct].gains = gains
        rows[stepwise].gains = gains


def bootstrap_rows(
    session: Session,
    benchmark_id: int,
    run_id: int,
    rows: Sequence[LeaderboardRow],
    resamples: int,
    pairs: Sequence[tuple[int, int]],
) -> tuple[list[EntryScores], dict[tuple[int, int], EntryScores]]:
    """Run the paired bootstrap over the rows' item outcomes in scoring run ``run_id``."""
    items = session.execute(
        select(
            BenchmarkItem.id, BenchmarkItem.axis, BenchmarkItem.item_key, BenchmarkItem.task_type
        )
        .where(BenchmarkItem.benchmark_id == benchmark_id)
        .order_by(BenchmarkItem.axis, BenchmarkItem.task_type, BenchmarkItem.item_key)
    ).all()
    # Direct and stepwise items with the same key are the same task, so they share a column.
    universe: dict[tuple[str, str], int] = {}
    categories: list[str] = []
    item_slot: dict[int, int] = {}
    for item_id, axis, item_key, task_type in items:
        if task_type not in AXIS_OF_CATEGORY:
            continue
        slot = universe.setdefault((axis, item_key), len(universe))
        if slot == len(categories):
            categories.append(task_type)
        item_slot[item_id] = slot

    submission_row: dict[uuid.UUID, int] = {}
    for index, row in enumerate(rows):
        for submission_id in row.submissions.values():
            submission_row[submission_id] = index
    outcomes = np.full((len(rows), len(universe)), np.nan)
    for submission_id, item_id, correct, judge_error in session.execute(
        select(
            ItemVerdict.submission_id,
            ItemVerdict.item_id,
            ItemVerdict.correct,
            ItemVerdict.judge_error,
        ).where(
            ItemVerdict.scoring_run_id == run_id,
            ItemVerdict.submission_id.in_(list(submission_row)),
        )
    ):
        column = item_slot.get(item_id)
        if column is not None and not judge_error:
            outcomes[submission_row[submission_id], column] = 1.0 if correct else 0.0

    layout = Layout(
        categories=ALL_CATEGORIES,
        axis_of=dict(AXIS_OF_CATEGORY),
        item_category=np.array([ALL_CATEGORIES.index(c) for c in categories], dtype=np.int64),
    )
    return bootstrap_scores(
        outcomes, layout, resamples=resamples, seed=BOOTSTRAP_SEED, level=LEVEL, pairs=pairs
    )


def _protocol_pairs(rows: Sequence[LeaderboardRow]) -> list[tuple[int, int]]:
    by_model: dict[str, dict[str, int]] = {}
    for index, row in enumerate(rows):
        by_model.setdefault(row.model_slug, {})[row.protocol] = index
    return [
        (protocols["direct"], protocols["stepwise"])
        for protocols in by_model.values()
        if "direct" in protocols and "stepwise" in protocols
    ]


def cells_of(entry: EntryScores) -> dict[str, Cell]:
    cells = {key: Cell.from_estimate(value) for key, value in entry.categories.items()}
    for axis, value in entry.axes.items():
        cells[axis] = Cell.from_estimate(value)
    cells["total"] = Cell.from_estimate(entry.total)
    return cells


def _binomial_row(row: LeaderboardRow) -> None:
    cells: dict[str, Cell] = {}
    for key, score in row.categories.items():
        if score.accuracy is None:
            cells[key] = Cell(None)
            continue
        interval = wilson_interval(
            score.accuracy / 100 * ITEMS_PER_CATEGORY, ITEMS_PER_CATEGORY, LEVEL
        )
        cells[key] = Cell(score.accuracy, 100 * interval.low, 100 * interval.high)
    for axis, names in (*CATEGORIES_BY_AXIS.items(), ("total", ALL_CATEGORIES)):
        values = [_fraction(row.categories.get(name)) for name in names]
        estimate = mean_of_proportions(values, [ITEMS_PER_CATEGORY] * len(names), LEVEL)
        cells[axis] = Cell.from_estimate(estimate)
    row.cells = cells


def _fraction(score: CategoryScore | None) -> float | None:
    if score is None or score.accuracy is None:
        return None
    return score.accuracy / 100


def _reference_gains(rows: Sequence[LeaderboardRow]) -> None:
    by_model: dict[str, dict[str, LeaderboardRow]] = {}
    for row in rows:
        by_model.setdefault(row.model_slug, {})[row.protocol] = row
    for protocols in by_model.values():
        direct, stepwise = protocols.get("direct"), protocols.get("stepwise")
        if direct is None or stepwise is None:
            continue
        gains: dict[str, Cell] = {}
        for key, names in (
            *((category, (category,)) for category in ALL_CATEGORIES),
            *CATEGORIES_BY_AXIS.items(),
            ("total", ALL_CATEGORIES),
        ):
            counts = [ITEMS_PER_CATEGORY] * len(names)
            estimate = difference_of_means(
                [_fraction(direct.categories.get(name)) for name in names],
                counts,
                [_fraction(stepwise.categories.get(name)) for name in names],
                counts,
                LEVEL,
            )
            gains[key] = Cell.from_estimate(estimate)
        direct.gains = gains
        stepwise.gains = gains


def unpaired_difference(first: Cell | None, second: Cell | None) -> Cell:
    """``second`` minus ``first`` with a normal-approximation interval from both half-widths."""
    if first is None or second is None or first.value is None or second.value is None:
        return Cell(None)
    first_half, second_half = first.half_width(), second.half_width()
    value = second.value - first.value
    if first_half is None or second_half is None:
        return Cell(value)
    z = _z(LEVEL)
    spread = math.hypot(first_half / z, second_half / z)
    p_value = math.erfc(abs(value) / spread / math.sqrt(2)) if spread > 0 else None
    return Cell(value, value - z * spread, value + z * spread, p_value)


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


SPECIALIST_OF_AXIS = {"UEG": "generation specialist", "GEU": "understanding specialist"}


def add_reference_gaps(rows: Sequence[LeaderboardRow]) -> None:
    """Fill ``to_pipeline`` and ``to_specialist`` on direct rows.

    The pipeline gap is the best specialist pipeline's stepwise score minus the model's direct
    score, per category and axis. The specialist gap is the best specialist's direct score on an
    axis minus the model's. Positive values mean the model falls short of the specialists.
    """
    for axis, names in CATEGORIES_BY_AXIS.items():
        pipeline = _best(rows, axis, "specialist pipeline", "stepwise")
        specialist = _best(rows, axis, SPECIALIST_OF_AXIS[axis], "direct")
        for row in rows:
            if row.protocol != "direct":
                continue
            if pipeline is not None:
                for key in (*names, axis):
                    row.to_pipeline[key] = unpaired_difference(
                        row.cells.get(key), pipeline.cells.get(key)
                    )
                row.pipeline_names[axis] = pipeline.model_name
            if specialist is not None:
                row.to_specialist[axis] = unpaired_difference(
                    row.cells.get(axis), specialist.cells.get(axis)
                )
                row.specialist_names[axis] = specialist.model_name


def _best(
    rows: Sequence[LeaderboardRow], axis: str, kind: str, protocol: str
) -> LeaderboardRow | None:
    candidates = [
        row
        for row in rows
        if row.model_kind == kind and row.protocol == protocol and row.axes.get(axis) is not None
    ]
    return max(candidates, key=lambda row: row.axes[axis] or 0.0, default=None)
