"""Send scoring work to the Celery workers, after the rows they need are committed."""

from __future__ import annotations

import uuid

from app.logs import get_logger

log = get_logger(__name__)


def enqueue_scoring(submission_id: uuid.UUID) -> bool:
    """Queue the scoring task; return False (and log) when the broker cannot be reached."""
    from workers.celery_app import celery_app
    from workers.tasks import SCORE_SUBMISSION

    try:
        celery_app.send_task(SCORE_SUBMISSION, args=[str(submission_id)])
    except Exception as error:  # kombu raises several types for an unreachable broker
        log.error("submission.enqueue_failed", submission_id=str(submission_id), error=str(error))
        return False
    log.info("submission.queued", submission_id=str(submission_id))
    return True


def enqueue_rescore(submission_id: uuid.UUID, run_id: int) -> bool:
    from workers.celery_app import celery_app
    from workers.tasks import RESCORE_SUBMISSION

    try:
        celery_app.send_task(RESCORE_SUBMISSION, args=[str(submission_id), run_id])
    except Exception as error:  # kombu raises several types for an unreachable broker
        log.error("rescore.enqueue_failed", submission_id=str(submission_id), error=str(error))
        return False
    return True


def enqueue_model_run(run_id: uuid.UUID) -> bool:
    from workers.celery_app import celery_app
    from workers.tasks import EXECUTE_MODEL_RUN

    try:
        celery_app.send_task(EXECUTE_MODEL_RUN, args=[str(run_id)])
    except Exception as error:  # kombu raises several types for an unreachable broker
        log.error("model_run.enqueue_failed", run_id=str(run_id), error=str(error))
        return False
    log.info("model_run.queued", run_id=str(run_id))
    return True
