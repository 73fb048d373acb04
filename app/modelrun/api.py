"""REST endpoints to register model endpoints and run the benchmark against them."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, SecretStr

from app.benchmarks.service import get_current_benchmark
from app.config import get_settings
from app.modelrun.service import (
    EndpointForm,
    cancel_run,
    check_endpoint,
    delete_endpoint,
    endpoint_body,
    get_endpoint,
    get_run,
    prepare_retry,
    register_endpoint,
    run_body,
    start_run,
)
from app.models import ModelEndpoint, ModelRun
from app.submissions.queue import enqueue_model_run
from app.web.deps import RowId, SessionDep, TokenUser

router = APIRouter(prefix="/api/v1", tags=["model runs"])


class ChatIn(BaseModel):
    base_url: str = Field(description="OpenAI-compatible base URL, e.g. https://host/v1")
    model: str
    api_key: SecretStr | None = Field(None, description="Sent as a bearer token; stored encrypted")


class ImagesIn(BaseModel):
    base_url: str = Field(description="OpenAI-compatible images API base URL")
    model: str
    api_key: SecretStr | None = None
    supports_edit: bool = Field(False, description="The endpoint serves /images/edits too")


class EndpointIn(BaseModel):
    model_name: str
    model_kind: str = "unified"
    link: str | None = None
    chat: ChatIn
    images: ImagesIn | None = None
    concurrency: int = 4
    requests_per_minute: float = 0.0
    timeout_seconds: float = 120.0
    max_items: int | None = None


class RunIn(BaseModel):
    flows: list[str] | None = Field(
        None, description="UEG_direct, UEG_step, GEU_direct, GEU_step (default: all possible)"
    )


def form_of(body: EndpointIn) -> EndpointForm:
    images = body.images
    return EndpointForm(
        model_name=body.model_name,
        model_kind=body.model_kind,
        link=body.link,
        chat_base_url=body.chat.base_url,
        chat_model=body.chat.model,
        chat_api_key=body.chat.api_key.get_secret_value() if body.chat.api_key else None,
        images_base_url=images.base_url if images else None,
        images_model=images.model if images else None,
        images_api_key=images.api_key.get_secret_value() if images and images.api_key else None,
        supports_edit=images.supports_edit if images else False,
        concurrency=body.concurrency,
        requests_per_minute=body.requests_per_minute,
        timeout_seconds=body.timeout_seconds,
        max_items=body.max_items,
    )


@router.post(
    "/endpoints", status_code=status.HTTP_201_CREATED, summary="Register a model's endpoints"
)
def register(session: SessionDep, user: TokenUser, body: EndpointIn) -> dict[str, Any]:
    endpoint = register_endpoint(session, get_settings(), user, form_of(body))
    return endpoint_body(session, endpoint)


@router.get("/endpoints", summary="Your registered endpoints")
def list_endpoints(session: SessionDep, user: TokenUser) -> list[dict[str, Any]]:
    from sqlalchemy import select

    endpoints = session.scalars(
        select(ModelEndpoint).where(ModelEndpoint.owner_id == user.id).order_by(ModelEndpoint.id)
    )
    return [endpoint_body(session, endpoint) for endpoint in endpoints]


@router.get("/endpoints/{endpoint_id}", summary="One endpoint (keys are never returned)")
def read_endpoint(session: SessionDep, user: TokenUser, endpoint_id: RowId) -> dict[str, Any]:
    return endpoint_body(session, get_endpoint(session, user, endpoint_id))


@router.delete("/endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint")
def remove_endpoint(session: SessionDep, user: TokenUser, endpoint_id: RowId) -> None:
    delete_endpoint(session, user, endpoint_id)


@router.post("/endpoints/{endpoint_id}/check", summary="Send one small request to each endpoint")
def check(session: SessionDep, user: TokenUser, endpoint_id: RowId) -> dict[str, Any]:
    endpoint = get_endpoint(session, user, endpoint_id)
    problems = asyncio.run(check_endpoint(session, get_settings(), endpoint))
    return {"ok": not problems, "problems": problems}


@router.post(
    "/endpoints/{endpoint_id}/runs", status_code=status.HTTP_202_ACCEPTED, summary="Start a run"
)
def create_run(
    session: SessionDep, user: TokenUser, endpoint_id: RowId, body: RunIn | None = None
) -> dict[str, Any]:
    endpoint = get_endpoint(session, user, endpoint_id)
    benchmark = get_current_benchmark(session, get_settings().benchmark_name)
    run = start_run(session, user, endpoint, benchmark.id, body.flows if body else None)
    session.commit()
    enqueue_model_run(run.id)
    return run_body(session, run)


@router.get("/runs/{run_id}", summary="Progress of a run: items done, failed, remaining, time left")
def read_run(session: SessionDep, user: TokenUser, run_id: str) -> dict[str, Any]:
    return run_body(session, get_run(session, user, run_id))


@router.post("/runs/{run_id}/cancel", summary="Cancel a run; finished steps are kept")
def cancel(session: SessionDep, user: TokenUser, run_id: str) -> dict[str, Any]:
    run = get_run(session, user, run_id)
    cancel_run(run)
    session.commit()
    return run_body(session, run)


@router.post(
    "/runs/{run_id}/retry", status_code=status.HTTP_202_ACCEPTED, summary="Retry failed items alone"
)
def retry(session: SessionDep, user: TokenUser, run_id: str) -> dict[str, Any]:
    run: ModelRun = get_run(session, user, run_id)
    prepare_retry(session, run)
    session.commit()
    enqueue_model_run(run.id)
    return run_body(session, run)
