"""Create submissions from validated uploads and read them back."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.benchmarks.layout import file_kind
from app.errors import Conflict, InvalidInput, NotFound
from app.logs import get_logger
from app.models import (
    AXES,
    MODEL_KINDS,
    PROTOCOLS,
    Benchmark,
    BenchmarkItem,
    Model,
    Prediction,
    Submission,
    User,
)
from app.submissions.validation import ItemRef, ValidatedUpload, validate_upload

log = get_logger(__name__)

MAX_MODEL_NAME = 200
MAX_LINK = 2000


@dataclass(frozen=True)
class SubmissionForm:
    """The fields that come with an upload, as typed by the user."""

    model_name: str
    model_kind: str
    protocol: str
    axis: str = "GEU"
    link: str | None = None
    allow_missing: bool = False


@dataclass(frozen=True)
class CheckedForm:
    model_name: str
    model_kind: str
    protocol: str
    axis: str
    link: str | None
    allow_missing: bool


def check_form(form: SubmissionForm) -> CheckedForm:
    """Validate the form fields; raise InvalidInput naming the field and the fix."""
    name = unicodedata.normalize("NFC", form.model_name).strip()
    if not name:
        raise InvalidInput("model_name: required; give the model's public name", field="model_name")
    if len(name) > MAX_MODEL_NAME or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput(
            f"model_name: use at most {MAX_MODEL_NAME} printable characters", field="model_name"
        )
    if not slugify(name):
        raise InvalidInput("model_name: include at least one letter or digit", field="model_name")
    kind = form.model_kind.strip().lower().replace("_", " ")
    if kind not in MODEL_KINDS:
        raise InvalidInput(
            f"model_kind: {form.model_kind!r} is not one of {', '.join(MODEL_KINDS)}",
            field="model_kind",
        )
    protocol = form.protocol.strip().lower()
    if protocol not in PROTOCOLS:
        raise InvalidInput(
            f"protocol: {form.protocol!r} is not one of {', '.join(PROTOCOLS)}", field="protocol"
        )
    axis = form.axis.strip().upper()
    if axis not in AXES:
        raise InvalidInput(f"axis: {form.axis!r} is not one of {', '.join(AXES)}", field="axis")
    link = (form.link or "").strip() or None
    if link is not None:
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(link) > MAX_LINK:
            raise InvalidInput(
                "link: give an http(s) URL such as https://example.org/paper", field="link"
            )
    return CheckedForm(name, kind, protocol, axis, link, form.allow_missing)


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def validate_for_benchmark(
    session: Session,
    benchmark: Benchmark,
    form: CheckedForm,
    data: bytes,
    filename: str,
    max_errors: int,
) -> ValidatedUpload:
    kind = file_kind(form.axis, form.protocol)
    rows = session.execute(
        select(
            BenchmarkItem.id,
            BenchmarkItem.item_key,
            BenchmarkItem.content_key,
            BenchmarkItem.public,
        )
        .where(
            BenchmarkItem.benchmark_id == benchmark.id,
            BenchmarkItem.axis == kind.axis,
            BenchmarkItem.protocol == kind.protocol,
        )
        .order_by(BenchmarkItem.position)
    ).all()
    if not rows:
        raise InvalidInput(
            f"protocol: the loaded benchmark has no {kind.stem} file, so {kind.axis} "
            f"{kind.protocol} submissions cannot be scored",
            field="protocol",
        )
    items = [ItemRef(row.id, row.item_key, row.content_key, row.public) for row in rows]
    return validate_upload(
        data, filename, kind, items, allow_missing=form.allow_missing, max_errors=max_errors
    )


def find_model(session: Session, user: User, form: CheckedForm) -> Model | None:
    """Return the user's model of this name, or None if the name is free.

    Raises Conflict when the name belongs to a reference row or to another account.
    """
    model = session.scalar(select(Model).where(Model.slug == slugify(form.model_name)))
    if model is None:
        return None
    if model.is_reference:
        raise Conflict(
            f"model_name: {model.name!r} is a reference row reported by a publication; submit "
            "under another name, such as one with your run's details",
            field="model_name",
        )
    if model.owner_id != user.id:
        raise Conflict(
            f"model_name: {model.name!r} belongs to another account; choose another name",
            field="model_name",
        )
    if model.name != form.model_name:
        raise Conflict(
            f"model_name: {form.model_name!r} is too close to your model {model.name!r}; use "
            "exactly that name or a clearly different one",
            field="model_name",
        )
    return model


def get_or_create_model(session: Session, user: User, form: CheckedForm) -> Model:
    model = find_model(session, user, form)
    if model is None:
        model = Model(
            name=form.model_name,
            slug=slugify(form.model_name),
            kind=form.model_kind,
            link=form.link,
            owner_id=user.id,
        )
        session.add(model)
        session.flush()
        log.info("model.created", model_id=model.id, user_id=user.id)
        return model
    model.kind = form.model_kind
    if form.link is not None:
        model.link = form.link
    return model


def create_submission(
    session: Session,
    user: User,
    benchmark: Benchmark,
    form: CheckedForm,
    upload: ValidatedUpload,
    data: bytes,
) -> Submission:
    """Store a validated upload as a queued submission. The caller commits, then enqueues."""
    report = upload.report
    if not report.valid:
        raise InvalidInput("the upload has errors", report=report.as_dict())
    model = get_or_create_model(session, user, form)
    submission = Submission(
        id=uuid.uuid4(),
        user_id=user.id,
        model_id=model.id,
        benchmark_id=benchmark.id,
        axis=form.axis,
        protocol=form.protocol,
        status="queued",
        upload_filename=report.filename[:255],
        upload_sha256=hashlib.sha256(data).hexdigest(),
        upload_format=report.file_format or "json",
        matched_by=report.matched_by or "index",
        item_count=report.matched_items,
        missing_count=len(report.missing_items),
    )
    session.add(submission)
    session.flush()
    session.add_all(
        Prediction(submission_id=submission.id, item_id=item_id, fields=fields)
        for item_id, fields in upload.predictions.items()
    )
    session.flush()
    log.info(
        "submission.created",
        submission_id=str(submission.id),
        model_id=model.id,
        user_id=user.id,
        items=submission.item_count,
    )
    return submission


def get_submission(session: Session, submission_id: uuid.UUID | str) -> Submission:
    try:
        key = submission_id if isinstance(submission_id, uuid.UUID) else uuid.UUID(submission_id)
    except ValueError:
        raise NotFound(f"submission {submission_id} not found") from None
    submission = session.get(Submission, key)
    if submission is None:
        raise NotFound(f"submission {submission_id} not found")
    return submission


def prepare_rescore(submission: Submission, user: User) -> None:
    """Mark the user's finished submission as queued again; the caller commits, then enqueues."""
    if submission.user_id != user.id:
        raise NotFound(f"submission {submission.id} not found among your submissions")
    if submission.status in ("queued", "running"):
        raise Conflict(f"submission {submission.id} is {submission.status}; wait until it ends")
    submission.status = "queued"
    log.info("submission.rescore_requested", submission_id=str(submission.id), user_id=user.id)


def delete_submission(session: Session, submission: Submission, user: User) -> None:
    """Withdraw the user's submission with its predictions and scores."""
    if submission.user_id != user.id:
        raise NotFound(f"submission {submission.id} not found among your submissions")
    session.delete(submission)
    session.flush()
    log.info("submission.deleted", submission_id=str(submission.id), user_id=user.id)
