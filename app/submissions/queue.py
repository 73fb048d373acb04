"""Send work to the Celery workers, after the rows it needs are committed."""

from __future__ import annotations

import uuid
from typing import Any

from app.logs import get_logger

log = get_logger(__name__)


def _send(task: str, args: list[Any], event: str, **ids: str) -> bool:
    """Queue ``task``; return False (and log ``event.enqueue_failed``) when the broker is down."""
    from workers.celery_app import celery_app

    try:
        celery_app.send_task(task, args=args)
    except Exception as error:  # kombu raises several types for an unreachable broker
        log.error(f"{event}.enqueue_failed", error=str(error), **ids)
        return False
    log.info(f"{event}.queued", **ids)
    return True


def enqueue_scoring(submission_id: uuid.UUID) -> bool:
    from workers.tasks import SCORE_SUBMISSION

    key = str(submission_id)
    return _send(SCORE_SUBMISSION, [key], "submission", submission_id=key)


def enqueue_rescore(submission_id: uuid.UUID, run_id: int) -> bool:
    from workers.tasks import RESCORE_SUBMISSION

    key = str(submission_id)
    return _send(
        RESCORE_SUBMISSION, [key, run_id], "rescore", submission_id=key, scoring_run_id=str(run_id)
    )


def enqueue_model_run(run_id: uuid.UUID) -> bool:
    from workers.tasks import EXECUTE_MODEL_RUN

    key = str(run_id)
    return _send(EXECUTE_MODEL_RUN, [key], "model_run", run_id=key)
