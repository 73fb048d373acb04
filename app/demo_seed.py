"""Seed a fresh server with the demo benchmark, reference rows and demo baselines.

The reference rows are the per-category results of the RealUnify paper (arXiv:2509.24897v2).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.service import create_user
from app.benchmarks.service import load_benchmark
from app.config import Settings
from app.db import session_scope
from app.leaderboard.reference import load_reference_rows
from app.models import Benchmark, Model, Submission, User
from app.submissions.intake import Intake, attach_images, store, upload_limits
from app.submissions.queue import enqueue_scoring
from app.submissions.service import SubmissionForm, check_form, validate_for_benchmark
from app.uploads.archive import stage_files

DEMO_EMAIL = "demo-baselines@example.org"


@dataclass(frozen=True)
class Baseline:
    file: str
    model_name: str
    model_kind: str
    axis: str
    protocol: str


def _baselines() -> list[Baseline]:
    models = (
        ("solver", "Demo solver", "other"),
        ("reference", "Demo solver", "other"),
        ("partial", "Demo partial model", "unified"),
        ("random", "Demo random guesser", "other"),
    )
    files = (
        ("GEU", "direct", "GEU_direct"),
        ("GEU", "stepwise", "GEU_step"),
        ("UEG", "direct", "UEG_direct"),
        ("UEG", "stepwise", "UEG_step"),
    )
    return [
        Baseline(f"{stem}.{key}.json", name, kind, axis, protocol)
        for key, name, kind in models
        for axis, protocol, stem in files
    ]


def seed_demo(settings: Settings) -> Iterator[str]:
    """Load and submit what is missing; yield one line per step. Safe to run again."""
    with session_scope() as session:
        current = session.scalar(
            select(Benchmark).where(
                Benchmark.name == settings.benchmark_name, Benchmark.is_current.is_(True)
            )
        )
        if current is not None and not current.is_demo:
            # Data loaded with `benchmark load` stays current; the demo would replace it.
            yield f"benchmark {current.version[:12]} is loaded, so the demo is left out"
            models = load_reference_rows(session)
            yield f"reference rows loaded for {models} models"
            return
        benchmark, created = load_benchmark(
            session, settings.demo_benchmark_path, settings.benchmark_name, is_demo=True
        )
        state = "loaded" if created else "already loaded"
        yield f"demo benchmark {state}: version {benchmark.version[:12]}"
        models = load_reference_rows(session)
        yield f"reference rows loaded for {models} models"

    queued: list[uuid.UUID] = []
    for baseline in _baselines():
        path = settings.demo_baselines_path / baseline.file
        if not path.is_file():
            continue
        with session_scope() as session:
            line = _submit(session, settings, benchmark, baseline, path, queued)
        if line:
            yield line
    for submission_id in queued:
        enqueue_scoring(submission_id)


def _submit(
    session: Session,
    settings: Settings,
    benchmark: Benchmark,
    baseline: Baseline,
    path: Path,
    queued: list[uuid.UUID],
) -> str | None:
    user = session.scalar(select(User).where(User.email == DEMO_EMAIL))
    if user is None:
        user = create_user(session, DEMO_EMAIL)
    already = session.scalar(
        select(Submission.id)
        .join(Model, Model.id == Submission.model_id)
        .where(
            Model.name == baseline.model_name,
            Submission.benchmark_id == benchmark.id,
            Submission.axis == baseline.axis,
            Submission.protocol == baseline.protocol,
        )
    )
    if already is not None:
        return None

    form = check_form(
        SubmissionForm(baseline.model_name, baseline.model_kind, baseline.protocol, baseline.axis)
    )
    data = path.read_bytes()
    upload = validate_for_benchmark(session, benchmark, form, data, path.name, 50)
    if not upload.report.valid:
        first = upload.report.errors[0]
        return f"skipped {path.name}: {first.item or ''} {first.message}"

    staging = Path(tempfile.mkdtemp(prefix="realunify-demo-", dir=settings.data_dir))
    try:
        staged = None
        if baseline.axis == "UEG":
            names = [item.get("generated_image") for item in json.loads(data)]
            files = [
                (name, settings.demo_baselines_path / name)
                for name in names
                if isinstance(name, str) and (settings.demo_baselines_path / name).is_file()
            ]
            staged = stage_files(files, staging / "images", upload_limits(settings))
            attach_images(upload, staged)
        submission = store(session, settings, user, Intake(form, benchmark, upload, data, staged))
        queued.append(submission.id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return f"submitted {path.name} as {baseline.model_name} ({baseline.axis} {baseline.protocol})"
