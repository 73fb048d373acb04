"""The submission form and the submission page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.config import get_settings
from app.errors import DomainError
from app.models import MODEL_KINDS, Model
from app.submissions.api import item_outcomes, submission_body
from app.submissions.intake import receive, store
from app.submissions.queue import enqueue_scoring
from app.submissions.service import (
    SubmissionForm,
    delete_submission,
    get_submission,
    prepare_rescore,
)
from app.web.deps import SessionDep, WebUser, check_csrf
from app.web.templating import render

router = APIRouter(include_in_schema=False)

TextField = Annotated[str, Form()]


def _form_page(
    request: Request,
    user: Any,
    values: dict[str, Any],
    error: str | None = None,
    report: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "user": user,
        "values": values,
        "error": error,
        "report": report,
        "model_kinds": MODEL_KINDS,
        "max_upload_bytes": get_settings().max_upload_bytes,
    }
    return render(request, "submit.html", context, status_code=status_code)


@router.get("/submit")
def submit_page(request: Request, user: WebUser) -> Response:
    if user is None:
        return RedirectResponse("/signin?next=/submit", status_code=303)
    values = {"model_kind": "unified", "protocol": "direct", "axis": "GEU"}
    return _form_page(request, user, values)


@router.post("/submit")
async def submit_form(
    request: Request,
    session: SessionDep,
    user: WebUser,
    predictions: Annotated[UploadFile | None, File()] = None,
    images: Annotated[list[UploadFile] | None, File()] = None,
    model_name: TextField = "",
    model_kind: TextField = "",
    protocol: TextField = "",
    axis: TextField = "GEU",
    link: TextField = "",
    allow_missing: TextField = "",
    dry_run: TextField = "",
    csrf: TextField = "",
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return RedirectResponse("/signin?next=/submit", status_code=303)
    values = {
        "model_name": model_name,
        "model_kind": model_kind,
        "protocol": protocol,
        "axis": axis,
        "link": link,
        "allow_missing": bool(allow_missing),
    }
    settings = get_settings()
    fields = SubmissionForm(model_name, model_kind, protocol, axis, link, bool(allow_missing))
    try:
        async with receive(session, settings, fields, predictions, images or [], user) as intake:
            report = intake.upload.report.as_dict()
            if not intake.upload.report.valid:
                message = "The upload has problems; nothing was stored. Fix them and try again."
                return _form_page(request, user, values, message, report, 422)
            if dry_run:
                return _form_page(request, user, values, None, report)
            # A savepoint, so a conflict raised half-way leaves no rows when the page is rendered.
            with session.begin_nested():
                submission = store(session, settings, user, intake)
    except DomainError as error:
        return _form_page(request, user, values, error.message, None, error.status_code)
    session.commit()
    enqueue_scoring(submission.id)
    return RedirectResponse(f"/submissions/{submission.id}", status_code=303)


@router.get("/submissions/{submission_id}")
def submission_page(
    request: Request, session: SessionDep, user: WebUser, submission_id: str
) -> Response:
    submission = get_submission(session, submission_id)
    is_owner = user is not None and user.id == submission.user_id
    model = session.get(Model, submission.model_id)
    context = {
        "user": user,
        "submission": submission,
        "body": submission_body(session, submission, user),
        "model": model,
        "is_owner": is_owner,
        "items": item_outcomes(session, submission) if is_owner else [],
    }
    return render(request, "submission.html", context)


@router.post("/submissions/{submission_id}/rejudge")
def rejudge_form(
    request: Request, session: SessionDep, user: WebUser, submission_id: str, csrf: TextField = ""
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return RedirectResponse(f"/signin?next=/submissions/{submission_id}", status_code=303)
    submission = get_submission(session, submission_id)
    prepare_rescore(submission, user)
    session.commit()
    enqueue_scoring(submission.id)
    return RedirectResponse(f"/submissions/{submission.id}", status_code=303)


@router.post("/submissions/{submission_id}/delete")
def delete_form(
    request: Request, session: SessionDep, user: WebUser, submission_id: str, csrf: TextField = ""
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return RedirectResponse(f"/signin?next=/submissions/{submission_id}", status_code=303)
    delete_submission(session, get_submission(session, submission_id), user)
    return RedirectResponse("/account", status_code=303)
