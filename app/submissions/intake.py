"""Receive an upload: the result file and, for UEG, its images, validated before anything is stored.

Images are staged in a private folder under the data directory, checked, matched to the items
that name them, and moved to content-addressed storage only when the whole upload is valid.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.benchmarks.service import get_current_benchmark
from app.config import Settings
from app.errors import InvalidInput, PayloadTooLarge
from app.models import Benchmark, Submission, User
from app.submissions.service import (
    CheckedForm,
    SubmissionForm,
    check_form,
    create_submission,
    find_model,
    validate_for_benchmark,
)
from app.submissions.upload import CHUNK_BYTES, read_limited
from app.submissions.validation import Problem, ValidatedUpload
from app.uploads.archive import stage_files, stage_zip
from app.uploads.images import (
    StagedImages,
    UploadLimits,
    UploadProblem,
    commit_images,
    format_size,
)


@dataclass
class Intake:
    form: CheckedForm
    benchmark: Benchmark
    upload: ValidatedUpload
    data: bytes
    staged: StagedImages | None


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        max_archive_bytes=settings.max_archive_bytes,
        max_members=settings.max_archive_members,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        max_image_pixels=settings.max_image_pixels,
        max_image_files=settings.max_image_files,
    )


@asynccontextmanager
async def receive(
    session: Session,
    settings: Settings,
    fields: SubmissionForm,
    predictions: UploadFile | None,
    images: Sequence[UploadFile],
    user: User,
) -> AsyncIterator[Intake]:
    """Validate an upload; the staged images are deleted when the block ends."""
    form = check_form(fields)
    find_model(session, user, form)
    images = [image for image in images if image.filename]
    if form.axis == "GEU" and images:
        raise InvalidInput(
            "images: GEU submissions take only the result file; remove the images", field="images"
        )
    staging = settings.data_dir / "staging" / uuid.uuid4().hex
    try:
        staged = await _stage_images(images, staging, settings) if form.axis == "UEG" else None
        data, filename = await _result_file(predictions, staged, settings)
        benchmark = get_current_benchmark(session, settings.benchmark_name)
        upload = validate_for_benchmark(
            session, benchmark, form, data, filename, settings.max_report_errors
        )
        if staged is not None:
            attach_images(upload, staged)
        yield Intake(form, benchmark, upload, data, staged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def store(session: Session, settings: Settings, user: User, intake: Intake) -> Submission:
    """Create the queued submission, then move the staged images to storage; the caller commits.

    The rows come first, so a conflict on the model name leaves no images behind.
    """
    submission = create_submission(
        session, user, intake.benchmark, intake.form, intake.upload, intake.data
    )
    if intake.staged is not None:
        submission.missing_image_count = len(intake.upload.report.missing_images)
        commit_images(intake.staged, settings.storage_dir)
    session.flush()
    return submission


async def _stage_images(
    images: Sequence[UploadFile], staging: Path, settings: Settings
) -> StagedImages:
    if not images:
        raise InvalidInput(
            "images: a UEG submission needs its generated images, as one .zip or as image files",
            field="images",
        )
    limits = upload_limits(settings)
    received = staging / "received"
    received.mkdir(parents=True)
    extracted = staging / "images"
    saved: list[tuple[str, Path]] = []
    for number, image in enumerate(images):
        path = received / f"{number:06d}"
        await _save(image, path, settings.max_archive_bytes)
        saved.append((image.filename or path.name, path))
    try:
        # Decoding and hashing every image takes long; a thread keeps other requests moving.
        if len(saved) == 1 and _is_zip(saved[0][1]):
            return await run_in_threadpool(stage_zip, saved[0][1], saved[0][0], extracted, limits)
        return await run_in_threadpool(stage_files, saved, extracted, limits)
    except UploadProblem as problem:
        error_class = PayloadTooLarge if problem.status_code == 413 else InvalidInput
        raise error_class(
            f"images: {problem}", field="images", member=problem.member, limit=problem.limit
        ) from None


async def _save(upload: UploadFile, path: Path, max_bytes: int) -> None:
    size = 0
    with path.open("wb") as target:
        while chunk := await upload.read(CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"images: {upload.filename} is over the {format_size(max_bytes)} limit "
                    "(REALUNIFY_MAX_ARCHIVE_BYTES); save the images at a smaller size, or ask the "
                    "operator to raise the limit",
                    field="images",
                )
            target.write(chunk)


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


async def _result_file(
    predictions: UploadFile | None, staged: StagedImages | None, settings: Settings
) -> tuple[bytes, str]:
    if predictions is not None and predictions.filename:
        return await read_limited(predictions, settings.max_upload_bytes, "predictions")
    if staged is not None and len(staged.result_files) == 1:
        name, path = next(iter(staged.result_files.items()))
        if path.stat().st_size > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"predictions: {name} is over the {format_size(settings.max_upload_bytes)} limit",
                field="predictions",
            )
        return path.read_bytes(), name
    if staged is not None and len(staged.result_files) > 1:
        names = ", ".join(sorted(staged.result_files))
        raise InvalidInput(
            f"predictions: the archive contains several result files ({names}); upload the one to "
            "score as `predictions`",
            field="predictions",
        )
    return await read_limited(predictions, settings.max_upload_bytes, "predictions")


def attach_images(upload: ValidatedUpload, staged: StagedImages) -> None:
    """Match each item's `generated_image` to an uploaded image; a missing one scores 0."""
    report = upload.report
    used: set[str] = set()
    missing: list[str] = []
    for fields in upload.predictions.values():
        reference = fields.get("generated_image")
        image = staged.find(reference) if isinstance(reference, str) and reference else None
        if image is None:
            missing.append(reference if isinstance(reference, str) and reference else "(none)")
            continue
        used.add(image.name)
        fields["image_sha256"] = image.sha256
        fields["media_type"] = image.media_type
        fields["image_size"] = [image.width, image.height]
    report.missing_images = missing
    if missing:
        shown = ", ".join(missing[:20]) + (
            f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        )
        report.warnings.append(
            Problem(
                f"{len(missing)} items name an image that is not in the upload; they score 0: "
                f"{shown}",
                field="generated_image",
            )
        )
    unused = sorted(set(staged.images) - used)
    for name in unused:
        # Only images an item names are kept in storage.
        del staged.images[name]
    if unused:
        report.warnings.append(
            Problem(
                f"{len(unused)} uploaded image(s) named by no item are ignored: "
                f"{', '.join(unused[:10])}",
                field="images",
            )
        )
