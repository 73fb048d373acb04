"""The Celery application, configured from the service settings.

Start a worker with ``celery -A workers.celery_app worker`` or ``realunify-board worker``.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import setup_logging

from app.config import get_settings
from app.logs import configure_logging


def make_celery() -> Celery:
    settings = get_settings()
    if settings.broker_url.startswith("sqla+sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("realunify", broker=settings.broker_url, include=["workers.tasks"])
    app.conf.update(
        task_ignore_result=True,
        task_default_queue=settings.task_queue,
        # A task is acknowledged after it finishes, so a worker that dies mid-task leaves it
        # queued for another worker. Tasks are written to be safe to run twice.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


@setup_logging.connect  # type: ignore[untyped-decorator]
def _configure_worker_logging(**_kwargs: object) -> None:
    configure_logging()


celery_app = make_celery()
