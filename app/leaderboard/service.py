"""Build leaderboard rows: one per model and protocol, from scored submissions and references.

Accuracies are percentages. Averages are recomputed from the per-category values, so a row that
lacks a category has no axis or total score rather than an average over what is present.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

if TYPE_CHECKING:
    from app.leaderboard.uncertainty import Cell
from sqlalchemy.orm import Session

from app.models import Benchmark, Model, ReferenceResult, ScoreAggregate, Submission
from app.scoring.accuracy import difference, mean_over
from app.scoring.categories import ALL_CATEGORIES, CATEGORIES_BY_AXIS
from app.scoring.runs import current_run

# The RealUnify paper judged UEG with Gemini 2.5 Pro (arXiv:2509.24897v2).
REFERENCE_JUDGE = "Gemini 2.5 Pro"
SORT_KEYS = ("total", "UEG", "GEU", "gap_total", "gap_UEG", "gap_GEU", "model", *ALL_CATEGORIES)


@dataclass
class CategoryScore:
    accuracy: float | None  # percent
    correct: int | None = None
    total: int | None = None


@dataclass
class LeaderboardRow:
    model_name: str
    model_slug: str
    model_kind: str
    link: str | None
    protocol: str
    is_reference: bool
    source: str | None
    categories: dict[str, CategoryScore] = field(default_factory=dict)
    axes: dict[str, float | None] = field(default_factory=dict)
    total: float | None = None
    # Stepwise minus direct, for the model's two rows, when both protocols have the value.
    gaps: dict[str, float | None] = field(default_factory=dict)
    submissions: dict[str, uuid.UUID] = field(default_factory=dict)
    scored_at: datetime | None = None
    # The judge model behind the UEG scores, and the share of UEG items it failed to judge.
    judge: str | None = None
    judge_error_rate: float | None = None
    # Filled by app.leaderboard.uncertainty: percent values with 95 % intervals, keyed by
    # category, "UEG", "GEU" and "total".
    cells: dict[str, Cell] = field(default_factory=dict)
    gains: dict[str, Cell] = field(default_factory=dict)
    to_pipeline: dict[str, Cell] = field(default_factory=dict)
    to_specialist: dict[str, Cell] = field(default_factory=dict)
    pipeline_names: dict[str, str] = field(default_factory=dict)
    specialist_names: dict[str, str] = field(default_factory=dict)
    rank: int | None = None
    # True when the service produced the predictions by calling the model's endpoints.
    run_by_service: bool = False

    def value(self, key: str) -> float | None:
        if key == "total":
            return self.total
        if key in self.axes:
            return self.axes[key]
        if key.startswith("gap_"):
            return self.gaps.get(key.removeprefix("gap_"))
        score = self.categories.get(key)
        return score.accuracy if score else None


def build_rows(
    session: Session,
    benchmark: Benchmark | None,
    *,
    include_reference: bool = True,
    run_id: int | None = None,
) -> list[LeaderboardRow]:
    """Build the rows from the scores of ``run_id`` (default: the current scoring run)."""
    rows: list[LeaderboardRow] = []
    if benchmark is not None:
        rows += _submission_rows(session, benchmark, run_id or current_run(session).id)
    if include_reference:
        rows += _reference_rows(session)
    for row in rows:
        _fill_averages(row)
    _fill_gaps(rows)
    return rows


def sort_rows(rows: list[LeaderboardRow], key: str = "total", descending: bool = True) -> None:
    """Sort in place; undefined values go last in both directions, ties by model and protocol."""
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r}")
    rows.sort(key=lambda row: (row.model_name.casefold(), row.protocol))
    if key == "model":
        if descending:
            rows.reverse()
        return
    sign = -1.0 if descending else 1.0
    value_of: Callable[[LeaderboardRow], float | None] = lambda row: row.value(key)  # noqa: E731
    rows.sort(key=lambda row: (value_of(row) is None, sign * (value_of(row) or 0.0)))


def _submission_rows(session: Session, benchmark: Benchmark, run_id: int) -> list[LeaderboardRow]:
    # The latest scored submission of each model, axis and protocol counts, among those with
    # scores in this run.
    in_run = (
        select(ScoreAggregate.submission_id)
        .where(ScoreAggregate.scoring_run_id == run_id, ScoreAggregate.level == "axis")
        .scalar_subquery()
    )
    latest: dict[tuple[int, str, str], Submission] = {}
    for submission in session.scalars(
        select(Submission)
        .where(
            Submission.benchmark_id == benchmark.id,
            Submission.status == "scored",
            Submission.id.in_(in_run),
        )
        .order_by(Submission.finished_at)
    ):
        latest[(submission.model_id, submission.axis, submission.protocol)] = submission
    if not latest:
        return []

    submission_ids = [submission.id for submission in latest.values()]
    aggregates: dict[uuid.UUID, list[ScoreAggregate]] = {}
    for aggregate in session.scalars(
        select(ScoreAggregate).where(
            ScoreAggregate.submission_id.in_(submission_ids),
            ScoreAggregate.level == "category",
            ScoreAggregate.scoring_run_id == run_id,
        )
    ):
        aggregates.setdefault(aggregate.submission_id, []).append(aggregate)
    models = {
        model.id: model
        for model in session.scalars(select(Model).where(Model.id.in_({key[0] for key in latest})))
    }

    rows: dict[tuple[int, str], LeaderboardRow] = {}
    for (model_id, axis, protocol), submission in sorted(latest.items()):
        model = models[model_id]
        row = rows.get((model_id, protocol))
        if row is None:
            row = LeaderboardRow(
                model.name, model.slug, model.kind, model.link, protocol, False, None
            )
            rows[(model_id, protocol)] = row
        row.submissions[axis] = submission.id
        row.run_by_service = row.run_by_service or submission.model_run_id is not None
        if axis == "UEG":
            row.judge = submission.judge_model
            if submission.item_count:
                row.judge_error_rate = submission.judge_error_count / submission.item_count
        if row.scored_at is None or (
            submission.finished_at is not None and submission.finished_at > row.scored_at
        ):
            row.scored_at = submission.finished_at
        for aggregate in aggregates.get(submission.id, []):
            row.categories[aggregate.key] = CategoryScore(
                None if aggregate.accuracy is None else 100.0 * aggregate.accuracy,
                aggregate.correct,
                aggregate.total,
            )
    return list(rows.values())


def _reference_rows(session: Session) -> list[LeaderboardRow]:
    results = session.execute(
        select(ReferenceResult, Model)
        .join(Model, Model.id == ReferenceResult.model_id)
        .where(Model.is_reference.is_(True))
    ).all()
    rows: dict[tuple[int, str], LeaderboardRow] = {}
    for result, model in results:
        row = rows.get((model.id, result.protocol))
        if row is None:
            row = LeaderboardRow(
                model.name, model.slug, model.kind, model.link, result.protocol, True, model.source
            )
            rows[(model.id, result.protocol)] = row
        row.categories[result.task_type] = CategoryScore(result.accuracy_percent)
        if result.task_type in CATEGORIES_BY_AXIS["UEG"]:
            row.judge = REFERENCE_JUDGE
    return list(rows.values())


def _fill_averages(row: LeaderboardRow) -> None:
    accuracies = {key: score.accuracy for key, score in row.categories.items()}
    for axis, categories in CATEGORIES_BY_AXIS.items():
        row.axes[axis] = mean_over(accuracies, categories)
    row.total = mean_over(accuracies, ALL_CATEGORIES)


def _fill_gaps(rows: Sequence[LeaderboardRow]) -> None:
    by_model: dict[tuple[str, bool], dict[str, LeaderboardRow]] = {}
    for row in rows:
        by_model.setdefault((row.model_slug, row.is_reference), {})[row.protocol] = row
    for protocols in by_model.values():
        direct, stepwise = protocols.get("direct"), protocols.get("stepwise")
        gaps: dict[str, float | None] = {"UEG": None, "GEU": None, "total": None}
        if direct is not None and stepwise is not None:
            for axis in CATEGORIES_BY_AXIS:
                gaps[axis] = difference(stepwise.axes[axis], direct.axes[axis])
            gaps["total"] = difference(stepwise.total, direct.total)
        for row in protocols.values():
            row.gaps = dict(gaps)
