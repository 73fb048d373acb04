"""Celery tasks. Each takes ids, reloads its rows and is safe to run twice."""

from __future__ import annotations

import time
import uuid
from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

from app.db import session_scope
from app.logs import get_logger
from app.models import Submission, utc_now
from app.scoring.service import score_submission
from workers.celery_app import celery_app

log = get_logger(__name__)

SCORE_SUBMISSION = "realunify.submissions.score"


@celery_app.task(  # type: ignore[untyped-decorator]
    name=SCORE_SUBMISSION,
    bind=True,
    max_retries=5,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
)
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
