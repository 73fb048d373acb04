"""Score a stored submission: a verdict per benchmark item, then the aggregates.

Scoring replaces any earlier verdicts and aggregates of the submission in the same transaction, so
running it twice leaves the same rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.errors import NotFound
from app.judging.client import PROMPT_VERSION
from app.models import BenchmarkItem, ItemVerdict, Prediction, ScoreAggregate, Submission
from app.scoring.accuracy import ItemOutcome, Ratio, mean_over, summarize
from app.scoring.categories import CATEGORIES_BY_AXIS
from app.scoring.choice import extract_choice, parse_options
from app.scoring.runs import current_run
from app.scoring.ueg import UegVerdict, judge_items

# Bump when a change to scoring can change a verdict, so old and new scores can be distinguished.
GEU_SCORER_VERSION = "geu-choice-1"
UEG_SCORER_VERSION = "ueg-judge-1"


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


def score_submission(
    session: Session,
    submission_id: uuid.UUID,
    settings: Settings | None = None,
    run_id: int | None = None,
) -> Submission:
    """Score into ``run_id`` (default: the current run), replacing that run's earlier rows."""
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
    if submission.axis == "GEU":
        rows = [
            _choice_row(submission, judge_choice(item, predictions.get(item.id))) for item in items
        ]
        submission.scorer_version = GEU_SCORER_VERSION
    else:
        settings = settings or get_settings()
        ueg_verdicts, _ = judge_items(session, settings, submission.id, items, predictions)
        rows = [_judge_row(submission, verdict) for verdict in ueg_verdicts]
        submission.scorer_version = UEG_SCORER_VERSION
        submission.judge_model = settings.judge_model
        submission.judge_prompt_version = PROMPT_VERSION
        submission.judge_error_count = sum(verdict.judge_error for verdict in ueg_verdicts)

    run = run_id if run_id is not None else current_run(session).id
    for row in rows:
        row.scoring_run_id = run
    session.execute(
        delete(ItemVerdict).where(
            ItemVerdict.submission_id == submission.id, ItemVerdict.scoring_run_id == run
        )
    )
    session.execute(
        delete(ScoreAggregate).where(
            ScoreAggregate.submission_id == submission.id, ScoreAggregate.scoring_run_id == run
        )
    )
    session.add_all(rows)
    outcomes = [
        ItemOutcome(item.task_type, item.subtask, row.correct, row.judge_error)
        for item, row in zip(items, rows, strict=True)
    ]
    aggregates = _aggregates(submission, outcomes)
    for aggregate in aggregates:
        aggregate.scoring_run_id = run
    session.add_all(aggregates)
    session.flush()
    return submission


def _choice_row(submission: Submission, verdict: Verdict) -> ItemVerdict:
    return ItemVerdict(
        submission_id=submission.id,
        item_id=verdict.item_id,
        extracted=verdict.extracted,
        correct=verdict.correct,
        judge_error=False,
        reason=verdict.reason[:2000],
    )


def _judge_row(submission: Submission, verdict: UegVerdict) -> ItemVerdict:
    return ItemVerdict(
        submission_id=submission.id,
        item_id=verdict.item_id,
        extracted=None,
        correct=verdict.correct,
        judge_error=verdict.judge_error,
        reason=verdict.reason[:2000],
        details=verdict.details or None,
    )


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
        judge_errors=ratio.judge_errors,
        accuracy=ratio.accuracy,
    )
