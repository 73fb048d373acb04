"""Scoring runs: versions of the scores. The current run is what the leaderboard shows."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.judging.client import PROMPT_VERSION
from app.logs import get_logger
from app.models import ScoreAggregate, ScoringRun, Submission, utc_now

log = get_logger(__name__)


def run_label(settings: Settings) -> str:
    from app.scoring.service import GEU_SCORER_VERSION, UEG_SCORER_VERSION

    return (
        f"{GEU_SCORER_VERSION}, {UEG_SCORER_VERSION} "
        f"(judge {settings.judge_model}, prompt {PROMPT_VERSION})"
    )


def current_run(session: Session) -> ScoringRun:
    """Return the current run, creating the first one on an empty database."""
    run = session.scalar(select(ScoringRun).where(ScoringRun.is_current.is_(True)))
    if run is None:
        run = ScoringRun(label="initial scores", status="complete", is_current=True)
        run.completed_at = utc_now()
        session.add(run)
        session.flush()
    return run


def running_runs(session: Session) -> list[ScoringRun]:
    return list(session.scalars(select(ScoringRun).where(ScoringRun.status == "running")))


def list_runs(session: Session) -> list[ScoringRun]:
    return list(session.scalars(select(ScoringRun).order_by(ScoringRun.id.desc())))


def start_rescore(session: Session, settings: Settings) -> tuple[ScoringRun, list[Submission]]:
    """Create a running run for every scored submission; the caller commits, then enqueues."""
    submissions = list(session.scalars(select(Submission).where(Submission.status == "scored")))
    run = ScoringRun(
        label=run_label(settings),
        status="running",
        is_current=False,
        submissions_total=len(submissions),
    )
    session.add(run)
    session.flush()
    log.info("rescore.started", scoring_run_id=run.id, submissions=len(submissions))
    return run, submissions


def finish_if_complete(session: Session, run_id: int) -> bool:
    """Make the run current once every scored submission has scores in it."""
    run = session.get(ScoringRun, run_id)
    if run is None or run.status == "complete":
        return False
    scored = set(session.scalars(select(Submission.id).where(Submission.status == "scored")))
    done = set(
        session.scalars(
            select(ScoreAggregate.submission_id)
            .where(ScoreAggregate.scoring_run_id == run_id, ScoreAggregate.level == "axis")
            .distinct()
        )
    )
    if not scored <= done:
        return False
    session.execute(update(ScoringRun).values(is_current=False))
    run.is_current = True
    run.status = "complete"
    run.completed_at = utc_now()
    session.flush()
    log.info("rescore.completed", scoring_run_id=run.id, submissions=len(done))
    return True


def scored_count(session: Session, run_id: int) -> int:
    count = session.scalar(
        select(func.count(func.distinct(ScoreAggregate.submission_id))).where(
            ScoreAggregate.scoring_run_id == run_id, ScoreAggregate.level == "axis"
        )
    )
    return count or 0


def run_for_submission(session: Session, submission_id: object) -> int | None:
    """Choose the run whose scores a submission shows: the current one if it has them, else the
    newest run that does."""
    runs = list(
        session.scalars(
            select(ScoreAggregate.scoring_run_id)
            .where(ScoreAggregate.submission_id == submission_id, ScoreAggregate.level == "axis")
            .distinct()
        )
    )
    if not runs:
        return None
    current = current_run(session).id
    return current if current in runs else max(runs)
