"""Score a stored submission: a verdict per benchmark item, then the aggregates.

Scoring replaces any earlier verdicts and aggregates of the submission in the same transaction, so
running it twice leaves the same rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import BenchmarkItem, ItemVerdict, Prediction, ScoreAggregate, Submission
from app.scoring.accuracy import ItemOutcome, Ratio, mean_over, summarize
from app.scoring.categories import CATEGORIES_BY_AXIS
from app.scoring.choice import extract_choice, parse_options

# Bump when a change to scoring can change a verdict, so old and new scores can be distinguished.
GEU_SCORER_VERSION = "geu-choice-1"


@dataclass(frozen=True)
class Verdict:
    item_id: int
    extracted: str | None
    correct: bool
    reason: str


def judge_choice(item: BenchmarkItem, fields: dict[str, object] | None) -> Verdict:
    """Read the chosen letter from the prediction and compare it with the stored answer."""
    if fields is None:
        return Verdict(item.id, None, False, "missing from the upload")
    options = parse_options(str(item.public.get("evaluation_prompt") or ""))
    choice = extract_choice(fields.get("response"), options or None)
    answer = item.private["answer"]
    return Verdict(item.id, choice.letter, choice.letter == answer, choice.reason)


def score_submission(session: Session, submission_id: uuid.UUID) -> Submission:
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"submission {submission_id} not found")
    items = list(
        session.scalars(
            select(BenchmarkItem)
            .where(
                BenchmarkItem.benchmark_id == submission.benchmark_id,
                BenchmarkItem.axis == submission.axis,
                BenchmarkItem.protocol == submission.protocol,
            )
            .order_by(BenchmarkItem.position)
        )
    )
    predictions = {
        prediction.item_id: prediction.fields
        for prediction in session.scalars(
            select(Prediction).where(Prediction.submission_id == submission.id)
        )
    }
    verdicts = [judge_choice(item, predictions.get(item.id)) for item in items]

    session.execute(delete(ItemVerdict).where(ItemVerdict.submission_id == submission.id))
    session.execute(delete(ScoreAggregate).where(ScoreAggregate.submission_id == submission.id))
    session.add_all(
        ItemVerdict(
            submission_id=submission.id,
            item_id=verdict.item_id,
            extracted=verdict.extracted,
            correct=verdict.correct,
            reason=verdict.reason[:2000],
        )
        for verdict in verdicts
    )
    outcomes = [
        ItemOutcome(item.task_type, item.subtask, verdict.correct)
        for item, verdict in zip(items, verdicts, strict=True)
    ]
    session.add_all(_aggregates(submission, outcomes))
    submission.scorer_version = GEU_SCORER_VERSION
    session.flush()
    return submission


def _aggregates(submission: Submission, outcomes: list[ItemOutcome]) -> list[ScoreAggregate]:
    breakdown = summarize(outcomes)
    rows = [_row(submission, "category", key, ratio) for key, ratio in breakdown.categories.items()]
    rows += [_row(submission, "subtask", key, ratio) for key, ratio in breakdown.subtasks.items()]
    accuracies = {key: ratio.accuracy for key, ratio in breakdown.categories.items()}
    axis_mean = mean_over(accuracies, CATEGORIES_BY_AXIS[submission.axis])
    rows.append(
        ScoreAggregate(
            submission_id=submission.id, level="axis", key=submission.axis, accuracy=axis_mean
        )
    )
    return rows


def _row(submission: Submission, level: str, key: str, ratio: Ratio) -> ScoreAggregate:
    return ScoreAggregate(
        submission_id=submission.id,
        level=level,
        key=key,
        correct=ratio.correct,
        total=ratio.total,
        accuracy=ratio.accuracy,
    )
