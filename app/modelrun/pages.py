"""Pages to register endpoints, check them, start runs and follow their progress."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from app.benchmarks.service import get_current_benchmark
from app.config import get_settings
from app.errors import DomainError
from app.modelrun.service import (
    EndpointForm,
    cancel_run,
    check_endpoint,
    endpoint_body,
    get_endpoint,
    get_run,
    prepare_retry,
    register_endpoint,
    run_body,
    start_run,
)
from app.models import MODEL_KINDS, ModelEndpoint, ModelRun
from app.submissions.queue import enqueue_model_run
from app.web.deps import RowId, SessionDep, WebUser, check_csrf
from app.web.templating import render

router = APIRouter(include_in_schema=False)
TextField = Annotated[str, Form()]


def _signin(next_path: str) -> Response:
    return RedirectResponse(f"/signin?next={next_path}", status_code=303)


def _list_page(
    request: Request,
    session: SessionDep,
    user: Any,
    values: dict[str, Any],
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    endpoints = session.scalars(
        select(ModelEndpoint).where(ModelEndpoint.owner_id == user.id).order_by(ModelEndpoint.id)
    ).all()
    context = {
        "user": user,
        "endpoints": [endpoint_body(session, endpoint) for endpoint in endpoints],
        "values": values,
        "error": error,
        "model_kinds": MODEL_KINDS,
    }
    return render(request, "endpoints.html", context, status_code=status_code)


@router.get("/endpoints")
def endpoints_page(request: Request, session: SessionDep, user: WebUser) -> Response:
    if user is None:
        return _signin("/endpoints")
    values = {
        "model_kind": "unified",
        "concurrency": 4,
        "timeout_seconds": 120,
        "requests_per_minute": 0,
    }
    return _list_page(request, session, user, values)


@router.post("/endpoints")
def register_form(
    request: Request,
    session: SessionDep,
    user: WebUser,
    model_name: TextField = "",
    model_kind: TextField = "unified",
    link: TextField = "",
    chat_base_url: TextField = "",
    chat_model: TextField = "",
    chat_api_key: TextField = "",
    images_base_url: TextField = "",
    images_model: TextField = "",
    images_api_key: TextField = "",
    supports_edit: TextField = "",
    concurrency: TextField = "4",
    requests_per_minute: TextField = "0",
    timeout_seconds: TextField = "120",
    max_items: TextField = "",
    csrf: TextField = "",
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return _signin("/endpoints")
    # The form shows back what was typed, except the keys.
    values = {
        "model_name": model_name,
        "model_kind": model_kind,
        "link": link,
        "chat_base_url": chat_base_url,
        "chat_model": chat_model,
        "images_base_url": images_base_url,
        "images_model": images_model,
        "supports_edit": bool(supports_edit),
        "concurrency": concurrency,
        "requests_per_minute": requests_per_minute,
        "timeout_seconds": timeout_seconds,
        "max_items": max_items,
    }
    try:
        numbers = _numbers(concurrency, requests_per_minute, timeout_seconds, max_items)
        form = EndpointForm(
            model_name=model_name,
            model_kind=model_kind,
            link=link or None,
            chat_base_url=chat_base_url,
            chat_model=chat_model,
            chat_api_key=chat_api_key or None,
            images_base_url=images_base_url or None,
            images_model=images_model or None,
            images_api_key=images_api_key or None,
            supports_edit=bool(supports_edit),
            **numbers,
        )
        with session.begin_nested():
            endpoint = register_endpoint(session, get_settings(), user, form)
    except DomainError as error:
        return _list_page(request, session, user, values, error.message, error.status_code)
    session.commit()
    return RedirectResponse(f"/endpoints/{endpoint.id}", status_code=303)


def _numbers(concurrency: str, per_minute: str, timeout: str, max_items: str) -> dict[str, Any]:
    from app.errors import InvalidInput

    try:
        values: dict[str, Any] = {"concurrency": int(concurrency)}
    except ValueError:
        raise InvalidInput(
            "concurrency: give a whole number such as 4", field="concurrency"
        ) from None
    try:
        values["requests_per_minute"] = float(per_minute or 0)
    except ValueError:
        raise InvalidInput(
            "requests_per_minute: give a number, 0 for no limit", field="requests_per_minute"
        ) from None
    try:
        values["timeout_seconds"] = float(timeout)
    except ValueError:
        raise InvalidInput(
            "timeout_seconds: give a number of seconds", field="timeout_seconds"
        ) from None
    try:
        values["max_items"] = int(max_items) if max_items.strip() else None
    except ValueError:
        raise InvalidInput(
            "max_items: give a whole number or leave it empty", field="max_items"
        ) from None
    return values


def _detail_page(
    request: Request,
    session: SessionDep,
    user: Any,
    endpoint: ModelEndpoint,
    problems: list[str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    runs = session.scalars(
        select(ModelRun)
        .where(ModelRun.endpoint_id == endpoint.id)
        .order_by(ModelRun.created_at.desc())
    ).all()
    context = {
        "user": user,
        "endpoint": endpoint_body(session, endpoint),
        "runs": [run_body(session, run) for run in runs],
        "problems": problems,
        "error": error,
    }
    return render(request, "endpoint.html", context, status_code=status_code)


@router.get("/endpoints/{endpoint_id}")
def endpoint_page(
    request: Request, session: SessionDep, user: WebUser, endpoint_id: RowId
) -> Response:
    if user is None:
        return _signin(f"/endpoints/{endpoint_id}")
    return _detail_page(request, session, user, get_endpoint(session, user, endpoint_id))


@router.post("/endpoints/{endpoint_id}/check")
def check_form(
    request: Request, session: SessionDep, user: WebUser, endpoint_id: RowId, csrf: TextField = ""
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return _signin(f"/endpoints/{endpoint_id}")
    endpoint = get_endpoint(session, user, endpoint_id)
    problems = asyncio.run(check_endpoint(session, get_settings(), endpoint))
    return _detail_page(request, session, user, endpoint, problems=problems)


@router.post("/endpoints/{endpoint_id}/runs")
def run_form(
    request: Request, session: SessionDep, user: WebUser, endpoint_id: RowId, csrf: TextField = ""
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return _signin(f"/endpoints/{endpoint_id}")
    endpoint = get_endpoint(session, user, endpoint_id)
    try:
        benchmark = get_current_benchmark(session, get_settings().benchmark_name)
        with session.begin_nested():
            run = start_run(session, user, endpoint, benchmark.id, None)
    except DomainError as error:
        return _detail_page(
            request, session, user, endpoint, error=error.message, status_code=error.status_code
        )
    session.commit()
    enqueue_model_run(run.id)
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


@router.get("/runs/{run_id}")
def run_page(request: Request, session: SessionDep, user: WebUser, run_id: str) -> Response:
    if user is None:
        return _signin(f"/runs/{run_id}")
    run = get_run(session, user, run_id)
    return render(request, "run.html", {"user": user, "run": run_body(session, run)})


@router.post("/runs/{run_id}/cancel")
def cancel_form(
    request: Request, session: SessionDep, user: WebUser, run_id: str, csrf: TextField = ""
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return _signin(f"/runs/{run_id}")
    cancel_run(get_run(session, user, run_id))
    session.commit()
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/retry")
def retry_form(
    request: Request, session: SessionDep, user: WebUser, run_id: str, csrf: TextField = ""
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return _signin(f"/runs/{run_id}")
    run = get_run(session, user, run_id)
    prepare_retry(session, run)
    session.commit()
    enqueue_model_run(run.id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
