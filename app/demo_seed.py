"""Seed a fresh server with the demo benchmark, reference rows and demo baselines.

The reference rows are the per-category results of the RealUnify paper (arXiv:2509.24897v2).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select

from app.accounts.service import create_user
from app.benchmarks.service import load_benchmark
from app.config import Settings
from app.db import session_scope
from app.leaderboard.reference import load_reference_rows
from app.models import Model, Submission, User
from app.submissions.queue import enqueue_scoring
from app.submissions.service import (
    SubmissionForm,
    check_form,
    create_submission,
    validate_for_benchmark,
)

DEMO_EMAIL = "demo-baselines@example.org"


@dataclass(frozen=True)
class Baseline:
    key: str
    model_name: str
    model_kind: str


BASELINES = (
    Baseline("solver", "Demo solver", "other"),
    Baseline("partial", "Demo partial model", "unified"),
    Baseline("random", "Demo random guesser", "other"),
)
FILES = (("GEU", "direct", "GEU_direct"), ("GEU", "stepwise", "GEU_step"))


def seed_demo(settings: Settings) -> Iterator[str]:
    """Load and submit what is missing; yield one line per step. Safe to run again."""
    with session_scope() as session:
        benchmark, created = load_benchmark(
            session, settings.demo_benchmark_path, settings.benchmark_name, is_demo=True
        )
        state = "loaded" if created else "already loaded"
        yield f"demo benchmark {state}: version {benchmark.version[:12]}"
        models = load_reference_rows(session)
        yield f"reference rows loaded for {models} models"

    queued = []
    for baseline in BASELINES:
        for axis, protocol, stem in FILES:
            path = settings.demo_baselines_path / f"{stem}.{baseline.key}.json"
            if not path.is_file():
                yield f"skipped {path.name}: not found"
                continue
            data = path.read_bytes()
            with session_scope() as session:
                user = session.scalar(select(User).where(User.email == DEMO_EMAIL))
                if user is None:
                    user = create_user(session, DEMO_EMAIL)
                form = check_form(
                    SubmissionForm(baseline.model_name, baseline.model_kind, protocol, axis)
                )
                already = session.scalar(
                    select(Submission.id)
                    .join(Model, Model.id == Submission.model_id)
                    .where(
                        Model.name == baseline.model_name,
                        Submission.benchmark_id == benchmark.id,
                        Submission.axis == axis,
                        Submission.protocol == protocol,
                    )
                )
                if already is not None:
                    continue
                upload = validate_for_benchmark(session, benchmark, form, data, path.name, 50)
                if not upload.report.valid:
                    first = upload.report.errors[0]
                    yield f"skipped {path.name}: {first.item or ''} {first.message}"
                    continue
                submission = create_submission(session, user, benchmark, form, upload, data)
                queued.append(submission.id)
            yield f"submitted {path.name} as {baseline.model_name} ({protocol})"
    for submission_id in queued:
        enqueue_scoring(submission_id)
