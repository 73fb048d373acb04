"""Celery tasks. Each takes ids, reloads its rows and is safe to run twice."""

from __future__ import annotations

import time
import uuid
from typing import Any

from celery import Task
from celery.signals import worker_ready
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.db import session_scope
from app.logs import get_logger
from app.models import ModelRun, Submission, utc_now
from app.scoring.runs import finish_if_complete, running_runs
from app.scoring.service import score_submission
from workers.celery_app import celery_app

log = get_logger(__name__)

SCORE_SUBMISSION = "realunify.submissions.score"
RESCORE_SUBMISSION = "realunify.submissions.rescore"
EXECUTE_MODEL_RUN = "realunify.modelruns.execute"
# Database outages are retried with growing, jittered delays.
RETRY_OPTIONS: dict[str, Any] = {
    "bind": True,
    "max_retries": 5,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
}


@celery_app.task(name=SCORE_SUBMISSION, **RETRY_OPTIONS)  # type: ignore[untyped-decorator]
def score_submission_task(self: Task[Any, Any], submission_id: str) -> None:
    """Score one submission and move it from queued to scored, or to failed with a reason."""
    key = uuid.UUID(submission_id)
    started = time.monotonic()
    try:
        with session_scope() as session:
            submission = session.get(Submission, key)
            if submission is None:
                log.warning("submission.not_found", submission_id=submission_id)
                return
            submission.status = "running"
            submission.started_at = utc_now()
            submission.attempts += 1
            submission.failure_reason = None
        log.info("submission.scoring", submission_id=submission_id, attempt=self.request.retries)

        with session_scope() as session:
            scored = score_submission(session, key)
            # A rescore in progress must include this submission too, or it would drop out of
            # the leaderboard when that run becomes current.
            for run in running_runs(session):
                score_submission(session, key, run_id=run.id)
            scored.status = "scored"
            scored.finished_at = utc_now()
    except OperationalError as error:
        if self.request.retries >= self.max_retries:
            _mark_failed(key, "the database was unavailable on every attempt; resubmit later")
            log.error("submission.failed", submission_id=submission_id, error=str(error))
            return
        log.warning("submission.retry", submission_id=submission_id, error=str(error))
        raise self.retry(exc=error) from None
    except Exception as error:
        log.exception("submission.failed", submission_id=submission_id)
        _mark_failed(
            key, f"internal error while scoring ({type(error).__name__}); please report it"
        )
        return
    log.info(
        "submission.scored",
        submission_id=submission_id,
        seconds=round(time.monotonic() - started, 3),
    )


def _mark_failed(key: uuid.UUID, reason: str) -> None:
    with session_scope() as session:
        submission = session.get(Submission, key)
        if submission is not None:
            submission.status = "failed"
            submission.failure_reason = reason
            submission.finished_at = utc_now()


@celery_app.task(name=RESCORE_SUBMISSION, **RETRY_OPTIONS)  # type: ignore[untyped-decorator]
def rescore_submission_task(self: Task[Any, Any], submission_id: str, run_id: int) -> None:
    """Score one submission into scoring run ``run_id``; the run becomes current when all are."""
    key = uuid.UUID(submission_id)
    try:
        with session_scope() as session:
            if session.get(Submission, key) is None:
                log.warning("submission.not_found", submission_id=submission_id, run_id=run_id)
            else:
                score_submission(session, key, run_id=run_id)
        with session_scope() as session:
            finish_if_complete(session, run_id)
    except OperationalError as error:
        log.warning("rescore.retry", submission_id=submission_id, run_id=run_id, error=str(error))
        raise self.retry(exc=error) from None
    log.info("submission.rescored", submission_id=submission_id, scoring_run_id=run_id)


@celery_app.task(name=EXECUTE_MODEL_RUN, **RETRY_OPTIONS)  # type: ignore[untyped-decorator]
def execute_model_run_task(self: Task[Any, Any], run_id: str) -> None:
    """Run or resume a model run; finished steps are read from its ledger, not called again."""
    from app.config import get_settings
    from app.modelrun.runner import RunBusy, execute_run

    key = uuid.UUID(run_id)
    try:
        status = execute_run(key, get_settings())
    except RunBusy as busy:
        # Another worker executes the run, or one that died still holds the lease: try again
        # when the lease ends. The retries do not count against max_retries.
        log.info("model_run.busy", run_id=run_id, seconds=round(busy.seconds))
        raise self.retry(countdown=busy.seconds + 1, max_retries=None) from None
    except OperationalError as error:
        log.warning("model_run.retry", run_id=run_id, error=str(error))
        raise self.retry(exc=error) from None
    except Exception as error:
        log.exception("model_run.failed", run_id=run_id)
        with session_scope() as session:
            run = session.get(ModelRun, key)
            if run is not None:
                run.status = "failed"
                run.error = f"internal error ({type(error).__name__}); failed items can be retried"
                run.finished_at = utc_now()
        return
    log.info("model_run.task_done", run_id=run_id, status=status)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _resume_unfinished(**_kwargs: object) -> None:
    """Resume work that a stopped worker left behind: model runs and submissions in progress."""
    from app.modelrun.runner import unfinished_runs

    for run_id in unfinished_runs():
        celery_app.send_task(EXECUTE_MODEL_RUN, args=[str(run_id)])
        log.info("model_run.resumed", run_id=str(run_id))
    with session_scope() as session:
        stuck = list(session.scalars(select(Submission.id).where(Submission.status == "running")))
    for submission_id in stuck:
        celery_app.send_task(SCORE_SUBMISSION, args=[str(submission_id)])
        log.info("submission.resumed", submission_id=str(submission_id))
