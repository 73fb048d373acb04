"""REST endpoints for submissions under /api/v1."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from app.config import get_settings
from app.errors import NotFound
from app.models import BenchmarkItem, ItemVerdict, Model, ScoreAggregate, Submission, User, iso_utc
from app.scoring.runs import run_for_submission
from app.submissions.intake import receive, store
from app.submissions.queue import enqueue_scoring
from app.submissions.service import (
    SubmissionForm,
    delete_submission,
    get_submission,
    prepare_rescore,
)
from app.web.deps import SessionDep, TokenUser

router = APIRouter(prefix="/api/v1/submissions", tags=["submissions"])

PredictionsFile = Annotated[
    UploadFile | None,
    File(description="The official result file (.json or .jsonl) with the submitter's fields"),
]
ImageFiles = Annotated[
    list[UploadFile] | None,
    File(description="UEG only: the generated images, as one .zip or as several image files"),
]
ModelName = Annotated[str, Form(description="The model's public name")]
ModelKind = Annotated[
    str, Form(description="unified, understanding specialist, generation specialist, ...")
]
Protocol = Annotated[str, Form(description="direct or stepwise")]
Axis = Annotated[str, Form(description="GEU (answers) or UEG (generated images)")]
Link = Annotated[str | None, Form(description="Optional http(s) link to the model or paper")]
AllowMissing = Annotated[
    bool, Form(description="Score items missing from the file as wrong instead of rejecting it")
]


@router.post("/validate", summary="Check a prediction file (and images) and store nothing")
async def validate_submission(
    session: SessionDep,
    user: TokenUser,
    model_name: ModelName,
    model_kind: ModelKind,
    protocol: Protocol,
    predictions: PredictionsFile = None,
    images: ImageFiles = None,
    axis: Axis = "GEU",
    link: Link = None,
    allow_missing: AllowMissing = False,
) -> dict[str, Any]:
    fields = SubmissionForm(model_name, model_kind, protocol, axis, link, allow_missing)
    async with receive(session, get_settings(), fields, predictions, images or [], user) as intake:
        return intake.upload.report.as_dict()


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload predictions; scoring runs in the background",
    responses={422: {"description": "The file or a field is invalid; `report` lists each problem"}},
)
async def submit(
    session: SessionDep,
    user: TokenUser,
    model_name: ModelName,
    model_kind: ModelKind,
    protocol: Protocol,
    predictions: PredictionsFile = None,
    images: ImageFiles = None,
    axis: Axis = "GEU",
    link: Link = None,
    allow_missing: AllowMissing = False,
) -> JSONResponse:
    settings = get_settings()
    fields = SubmissionForm(model_name, model_kind, protocol, axis, link, allow_missing)
    async with receive(session, settings, fields, predictions, images or [], user) as intake:
        report = intake.upload.report.as_dict()
        if not intake.upload.report.valid:
            return JSONResponse(
                status_code=422, content={"detail": _summary(report), "report": report}
            )
        submission = store(session, settings, user, intake)
    session.commit()
    queued = enqueue_scoring(submission.id)
    body = submission_body(session, submission, user)
    body["report"] = report
    if not queued:
        body["warning"] = "the scoring queue is unreachable; the submission waits until it is back"
    return JSONResponse(status_code=202, content=body)


@router.post("/{submission_id}/rejudge", status_code=202, summary="Score again (UEG: judge errors)")
def rejudge(session: SessionDep, user: TokenUser, submission_id: str) -> dict[str, Any]:
    """Queue the submission for scoring again. Judge calls that succeeded are read from the ledger,
    so only the questions that failed go to the judge."""
    submission = get_submission(session, submission_id)
    prepare_rescore(submission, user)
    session.commit()
    enqueue_scoring(submission.id)
    return submission_body(session, submission, user)


@router.delete("/{submission_id}", status_code=204, summary="Withdraw your submission")
def withdraw(session: SessionDep, user: TokenUser, submission_id: str) -> Response:
    delete_submission(session, get_submission(session, submission_id), user)
    return Response(status_code=204)


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
    run_id = run_for_submission(session, submission.id)
    aggregates = session.scalars(
        select(ScoreAggregate).where(
            ScoreAggregate.submission_id == submission.id,
            ScoreAggregate.scoring_run_id == run_id,
        )
    ).all()
    categories = {row.key: _score(row) for row in aggregates if row.level == "category"}
    subtasks = {row.key: _score(row) for row in aggregates if row.level == "subtask"}
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
        "scoring_run": run_id,
        "judge": None
        if submission.axis == "GEU"
        else {
            "model": submission.judge_model,
            "prompt_version": submission.judge_prompt_version,
            "errors": submission.judge_error_count,
            "error_rate": round(submission.judge_error_count / submission.item_count, 4)
            if submission.item_count
            else None,
        },
        "missing_image_count": submission.missing_image_count,
        "run_by_service": submission.model_run_id is not None,
        "model_run": None
        if submission.model_run_id is None
        else f"/runs/{submission.model_run_id}",
        "created_at": iso_utc(submission.created_at),
        "finished_at": iso_utc(submission.finished_at),
        "scores": categories,
        "subtask_scores": subtasks,
        "axis_scores": axis_scores,
        "url": f"/submissions/{submission.id}",
    }


def item_outcomes(session: SessionDep, submission: Submission) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ItemVerdict, BenchmarkItem)
        .join(BenchmarkItem, BenchmarkItem.id == ItemVerdict.item_id)
        .where(
            ItemVerdict.submission_id == submission.id,
            ItemVerdict.scoring_run_id == run_for_submission(session, submission.id),
        )
        .order_by(BenchmarkItem.position)
    ).all()
    return [
        {
            "index": item.public.get("index"),
            "position": item.position,
            "task_type": item.task_type,
            "subtask": item.subtask,
            "extracted": verdict.extracted,
            "correct": None if verdict.judge_error else verdict.correct,
            "judge_error": verdict.judge_error,
            "reason": verdict.reason,
            # Question texts and expected answers stay on the server; only counts are shown.
            "questions": len(verdict.details) if verdict.details else None,
            "judge_call_ids": [d["judge_call_id"] for d in verdict.details]
            if verdict.details
            else None,
        }
        for verdict, item in rows
    ]


def _score(row: ScoreAggregate) -> dict[str, Any]:
    return {
        "accuracy": _percent(row.accuracy),
        "correct": row.correct,
        "total": row.total,
        "judge_errors": row.judge_errors,
    }


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 2)


def _summary(report: dict[str, Any]) -> str:
    errors = report["errors"]
    first = errors[0]
    where = " ".join(part for part in (first.get("item"), first.get("field")) if part)
    more = len(errors) + report["omitted_errors"] - 1
    tail = ""
    if more:
        tail = f" (and {more} more {'problem' if more == 1 else 'problems'} in report.errors)"
    return f"{where + ': ' if where else ''}{first['message']}{tail}"
