"""REST endpoints for submissions under /api/v1."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.benchmarks.service import get_current_benchmark
from app.config import get_settings
from app.errors import NotFound
from app.models import BenchmarkItem, ItemVerdict, Model, ScoreAggregate, Submission, User
from app.submissions.queue import enqueue_scoring
from app.submissions.service import (
    SubmissionForm,
    check_form,
    create_submission,
    get_submission,
    validate_for_benchmark,
)
from app.submissions.upload import read_limited
from app.web.deps import SessionDep, TokenUser

router = APIRouter(prefix="/api/v1/submissions", tags=["submissions"])

PredictionsFile = Annotated[
    UploadFile, File(description="The official result file (.json or .jsonl) with responses")
]
ModelName = Annotated[str, Form(description="The model's public name")]
ModelKind = Annotated[
    str, Form(description="unified, understanding specialist, generation specialist, ...")
]
Protocol = Annotated[str, Form(description="direct or stepwise")]
Axis = Annotated[str, Form(description="GEU (UEG needs image uploads, not accepted yet)")]
Link = Annotated[str | None, Form(description="Optional http(s) link to the model or paper")]
AllowMissing = Annotated[
    bool, Form(description="Score items missing from the file as wrong instead of rejecting it")
]


async def _validate(
    session: SessionDep,
    predictions: UploadFile,
    model_name: str,
    model_kind: str,
    protocol: str,
    axis: str,
    link: str | None,
    allow_missing: bool,
) -> tuple[Any, Any, Any, bytes]:
    settings = get_settings()
    form = check_form(SubmissionForm(model_name, model_kind, protocol, axis, link, allow_missing))
    data, filename = await read_limited(predictions, settings.max_upload_bytes, "predictions")
    benchmark = get_current_benchmark(session, settings.benchmark_name)
    upload = validate_for_benchmark(
        session, benchmark, form, data, filename, settings.max_report_errors
    )
    return form, benchmark, upload, data


@router.post("/validate", summary="Check a prediction file and store nothing")
async def validate_submission(
    session: SessionDep,
    _user: TokenUser,
    predictions: PredictionsFile,
    model_name: ModelName,
    model_kind: ModelKind,
    protocol: Protocol,
    axis: Axis = "GEU",
    link: Link = None,
    allow_missing: AllowMissing = False,
) -> dict[str, Any]:
    _, _, upload, _ = await _validate(
        session, predictions, model_name, model_kind, protocol, axis, link, allow_missing
    )
    return upload.report.as_dict()  # type: ignore[no-any-return]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload predictions; scoring runs in the background",
    responses={422: {"description": "The file or a field is invalid; `report` lists each problem"}},
)
async def submit(
    session: SessionDep,
    user: TokenUser,
    predictions: PredictionsFile,
    model_name: ModelName,
    model_kind: ModelKind,
    protocol: Protocol,
    axis: Axis = "GEU",
    link: Link = None,
    allow_missing: AllowMissing = False,
) -> JSONResponse:
    form, benchmark, upload, data = await _validate(
        session, predictions, model_name, model_kind, protocol, axis, link, allow_missing
    )
    if not upload.report.valid:
        report = upload.report.as_dict()
        return JSONResponse(
            status_code=422,
            content={"detail": _summary(report), "report": report},
        )
    submission = create_submission(session, user, benchmark, form, upload, data)
    session.commit()
    queued = enqueue_scoring(submission.id)
    body = submission_body(session, submission, user)
    body["report"] = upload.report.as_dict()
    if not queued:
        body["warning"] = "the scoring queue is unreachable; the submission waits until it is back"
    return JSONResponse(status_code=202, content=body)


@router.get("", summary="List your submissions")
def list_submissions(session: SessionDep, user: TokenUser) -> list[dict[str, Any]]:
    submissions = session.scalars(
        select(Submission).where(Submission.user_id == user.id).order_by(Submission.created_at)
    )
    return [submission_body(session, submission, user) for submission in submissions]


@router.get("/{submission_id}", summary="Status and scores of a submission")
def read_submission(session: SessionDep, submission_id: str) -> dict[str, Any]:
    return submission_body(session, get_submission(session, submission_id), None)


@router.get("/{submission_id}/items", summary="Per-item outcomes (the submitter only)")
def read_items(session: SessionDep, user: TokenUser, submission_id: str) -> list[dict[str, Any]]:
    submission = get_submission(session, submission_id)
    if submission.user_id != user.id:
        # The same response as for a missing submission, so ids of others' submissions leak nothing.
        raise NotFound(f"submission {submission_id} not found among your submissions")
    return item_outcomes(session, submission)


def submission_body(
    session: SessionDep, submission: Submission, viewer: User | None
) -> dict[str, Any]:
    model = session.get(Model, submission.model_id)
    aggregates = session.scalars(
        select(ScoreAggregate).where(ScoreAggregate.submission_id == submission.id)
    ).all()
    categories = {
        row.key: {"accuracy": _percent(row.accuracy), "correct": row.correct, "total": row.total}
        for row in aggregates
        if row.level == "category"
    }
    subtasks = {
        row.key: {"accuracy": _percent(row.accuracy), "correct": row.correct, "total": row.total}
        for row in aggregates
        if row.level == "subtask"
    }
    axis_scores = {row.key: _percent(row.accuracy) for row in aggregates if row.level == "axis"}
    return {
        "id": str(submission.id),
        "status": submission.status,
        "failure_reason": submission.failure_reason,
        "model": {"name": model.name, "slug": model.slug, "kind": model.kind} if model else None,
        "axis": submission.axis,
        "protocol": submission.protocol,
        "items": submission.item_count,
        "missing_items": submission.missing_count,
        "matched_by": submission.matched_by,
        "scorer_version": submission.scorer_version,
        "created_at": submission.created_at.isoformat(),
        "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
        "scores": categories,
        "subtask_scores": subtasks,
        "axis_scores": axis_scores,
        "url": f"/submissions/{submission.id}",
    }


def item_outcomes(session: SessionDep, submission: Submission) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ItemVerdict, BenchmarkItem)
        .join(BenchmarkItem, BenchmarkItem.id == ItemVerdict.item_id)
        .where(ItemVerdict.submission_id == submission.id)
        .order_by(BenchmarkItem.position)
    ).all()
    return [
        {
            "index": item.public.get("index"),
            "position": item.position,
            "task_type": item.task_type,
            "subtask": item.subtask,
            "extracted": verdict.extracted,
            "correct": verdict.correct,
            "reason": verdict.reason,
        }
        for verdict, item in rows
    ]


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 2)


def _summary(report: dict[str, Any]) -> str:
    errors = report["errors"]
    first = errors[0]
    where = " ".join(part for part in (first.get("item"), first.get("field")) if part)
    more = len(errors) + report["omitted_errors"] - 1
    tail = f" (and {more} more problems in `report.errors`)" if more else ""
    return f"{where + ': ' if where else ''}{first['message']}{tail}"
