"""Register model endpoints and start, cancel and retry runs of the benchmark against them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.benchmarks.layout import FILE_KINDS
from app.config import Settings
from app.errors import Conflict, InvalidInput, NotFound
from app.logs import get_logger
from app.models import (
    BenchmarkItem,
    Model,
    ModelCall,
    ModelEndpoint,
    ModelRun,
    Submission,
    User,
    iso_utc,
    utc_now,
)
from app.outbound.safety import OutboundPolicy, UnsafeURL, check_url
from app.outbound.secrets import SecretBox
from app.submissions.service import SubmissionForm, check_form, get_or_create_model

log = get_logger(__name__)

MAX_CONCURRENCY = 64
MAX_TIMEOUT_SECONDS = 600.0
MIN_KEY_LENGTH = 8
MAX_ITEMS = 1_000_000


@dataclass(frozen=True)
class EndpointForm:
    model_name: str
    model_kind: str
    chat_base_url: str
    chat_model: str
    chat_api_key: str | None = None
    images_base_url: str | None = None
    images_model: str | None = None
    images_api_key: str | None = None
    supports_edit: bool = False
    link: str | None = None
    concurrency: int = 4
    requests_per_minute: float = 0.0
    timeout_seconds: float = 120.0
    max_items: int | None = None


def outbound_policy(settings: Settings) -> OutboundPolicy:
    return OutboundPolicy.from_setting(settings.outbound_allowlist)


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.secret_key)


def _check_base_url(value: str, field: str, policy: OutboundPolicy) -> str:
    url = value.strip().rstrip("/")
    if not url:
        raise InvalidInput(f"{field}: required, e.g. https://api.example.org/v1", field=field)
    if "@" in urlsplit(url).netloc:
        # The message must not repeat the URL, which carries a password.
        raise InvalidInput(
            f"{field}: remove the user name and password from the URL; give the API key in its "
            "own field",
            field=field,
        )
    try:
        check_url(url, policy)
    except UnsafeURL as error:
        raise InvalidInput(f"{field}: {error}", field=field) from None
    return url


def register_endpoint(
    session: Session, settings: Settings, user: User, form: EndpointForm
) -> ModelEndpoint:
    """Validate the form, refuse unsafe addresses, encrypt the keys and store the endpoint."""
    checked = check_form(
        SubmissionForm(form.model_name, form.model_kind, "direct", "GEU", form.link)
    )
    policy = outbound_policy(settings)
    chat_url = _check_base_url(form.chat_base_url, "chat.base_url", policy)
    if not form.chat_model.strip():
        raise InvalidInput(
            "chat.model: required, the model name the endpoint expects", field="chat.model"
        )
    images_url = None
    if form.images_base_url and form.images_base_url.strip():
        images_url = _check_base_url(form.images_base_url, "images.base_url", policy)
        if not (form.images_model or "").strip():
            raise InvalidInput("images.model: required with images.base_url", field="images.model")
    if form.supports_edit and images_url is None:
        raise InvalidInput(
            "images.supports_edit: editing needs an images endpoint; set images.base_url",
            field="images.supports_edit",
        )
    if not 1 <= form.concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(f"concurrency: use 1 to {MAX_CONCURRENCY}", field="concurrency")
    if form.requests_per_minute < 0:
        raise InvalidInput(
            "requests_per_minute: use 0 (no limit) or more", field="requests_per_minute"
        )
    if not 1 <= form.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise InvalidInput(
            f"timeout_seconds: use 1 to {MAX_TIMEOUT_SECONDS:g}", field="timeout_seconds"
        )
    if form.max_items is not None and not 1 <= form.max_items <= MAX_ITEMS:
        raise InvalidInput(
            f"max_items: use 1 to {MAX_ITEMS:,}, or leave it empty", field="max_items"
        )

    keys = (("chat.api_key", form.chat_api_key), ("images.api_key", form.images_api_key))
    for field, key in keys:
        if key is not None and len(key.strip()) < MIN_KEY_LENGTH:
            raise InvalidInput(
                f"{field}: too short for an API key; paste the whole key or leave it empty",
                field=field,
            )
    model = get_or_create_model(session, user, checked)
    box = secret_box(settings)
    endpoint = ModelEndpoint(
        owner_id=user.id,
        model_id=model.id,
        chat_base_url=chat_url,
        chat_model=form.chat_model.strip(),
        chat_api_key=box.encrypt(form.chat_api_key) if form.chat_api_key else None,
        images_base_url=images_url,
        images_model=(form.images_model or "").strip() or None,
        images_api_key=box.encrypt(form.images_api_key) if form.images_api_key else None,
        supports_edit=form.supports_edit,
        concurrency=form.concurrency,
        requests_per_minute=form.requests_per_minute,
        timeout_seconds=form.timeout_seconds,
        max_items=form.max_items,
    )
    session.add(endpoint)
    session.flush()
    log.info("endpoint.registered", endpoint_id=endpoint.id, user_id=user.id, model_id=model.id)
    return endpoint


def get_endpoint(session: Session, user: User, endpoint_id: int) -> ModelEndpoint:
    endpoint = session.get(ModelEndpoint, endpoint_id)
    if endpoint is None or endpoint.owner_id != user.id:
        raise NotFound(f"endpoint {endpoint_id} not found among your endpoints")
    return endpoint


def delete_endpoint(session: Session, user: User, endpoint_id: int) -> None:
    endpoint = get_endpoint(session, user, endpoint_id)
    session.delete(endpoint)
    session.flush()


def endpoint_body(session: Session, endpoint: ModelEndpoint) -> dict[str, Any]:
    """Describe the endpoint for its owner: keys only as "set" or not, never their value."""
    model = session.get(Model, endpoint.model_id)
    return {
        "id": endpoint.id,
        "model": {"name": model.name, "slug": model.slug, "kind": model.kind} if model else None,
        "chat": {
            "base_url": endpoint.chat_base_url,
            "model": endpoint.chat_model,
            "api_key": "set" if endpoint.chat_api_key else "not set",
        },
        "images": None
        if endpoint.images_base_url is None
        else {
            "base_url": endpoint.images_base_url,
            "model": endpoint.images_model,
            "api_key": "set" if endpoint.images_api_key else "not set",
            "supports_edit": endpoint.supports_edit,
        },
        "limits": {
            "concurrency": endpoint.concurrency,
            "requests_per_minute": endpoint.requests_per_minute,
            "timeout_seconds": endpoint.timeout_seconds,
            "max_items": endpoint.max_items,
        },
        "flows": {stem: reason for stem, reason in possible_flows(endpoint).items()},
        "last_check": None
        if endpoint.last_check_at is None
        else {"at": endpoint.last_check_at.isoformat(), "problems": endpoint.last_check_problems},
    }


def possible_flows(endpoint: ModelEndpoint) -> dict[str, str | None]:
    """Map each benchmark file to why it cannot run, or to None when it can."""
    has_images = endpoint.images_base_url is not None
    return {
        "UEG_direct": None if has_images else "needs an images endpoint for generation",
        "UEG_step": None if has_images else "needs an images endpoint for generation",
        "GEU_direct": None,
        "GEU_step": None
        if has_images and endpoint.supports_edit
        else "needs an images endpoint that supports editing; no GEU stepwise result",
    }


def start_run(
    session: Session,
    user: User,
    endpoint: ModelEndpoint,
    benchmark_id: int,
    flows: list[str] | None,
) -> ModelRun:
    """Create a queued run; the caller commits, then enqueues it."""
    possible = possible_flows(endpoint)
    chosen = flows or [stem for stem, reason in possible.items() if reason is None]
    for stem in chosen:
        if stem not in possible:
            raise InvalidInput(
                f"flows: {stem!r} is not one of {', '.join(possible)}", field="flows"
            )
        if possible[stem] is not None:
            raise InvalidInput(f"flows: {stem} {possible[stem]}", field="flows")
    active = session.scalar(
        select(func.count())
        .select_from(ModelRun)
        .where(ModelRun.endpoint_id == endpoint.id, ModelRun.status.in_(("queued", "running")))
    )
    if active:
        raise Conflict("this endpoint already has a run in progress; wait for it or cancel it")
    total = 0
    for kind in FILE_KINDS:
        if kind.stem in chosen:
            total += (
                session.scalar(
                    select(func.count())
                    .select_from(BenchmarkItem)
                    .where(
                        BenchmarkItem.benchmark_id == benchmark_id,
                        BenchmarkItem.axis == kind.axis,
                        BenchmarkItem.protocol == kind.protocol,
                    )
                )
                or 0
            )
    if endpoint.max_items is not None and total > endpoint.max_items:
        raise InvalidInput(
            f"max_items: the run needs {total} items, over this endpoint's limit of "
            f"{endpoint.max_items}; raise the limit or choose fewer flows",
            field="max_items",
        )
    run = ModelRun(
        id=uuid.uuid4(),
        endpoint_id=endpoint.id,
        user_id=user.id,
        benchmark_id=benchmark_id,
        flows=chosen,
        status="queued",
        items_total=total,
    )
    session.add(run)
    session.flush()
    log.info("model_run.created", run_id=str(run.id), endpoint_id=endpoint.id, items=total)
    return run


def _worker_state(run: ModelRun) -> str | None:
    """Say whether a worker is executing a run that has not ended."""
    if run.status not in ("queued", "running"):
        return None
    expires = run.lease_expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if expires is not None and expires > utc_now():
        # A worker renews its claim after each item; one that died keeps it until it ends.
        return f"a worker has claimed this run until {expires:%H:%M:%S} UTC"
    if run.status == "running":
        return (
            "no worker holds this run; it resumes when a worker starts or its last "
            "worker's claim ends"
        )
    return "waiting for a worker"


def get_run(session: Session, user: User | None, run_id: str) -> ModelRun:
    try:
        key = uuid.UUID(run_id)
    except ValueError:
        raise NotFound(f"run {run_id} not found") from None
    run = session.get(ModelRun, key)
    if run is None or (user is not None and run.user_id != user.id):
        raise NotFound(f"run {run_id} not found among your runs")
    return run


def cancel_run(run: ModelRun) -> None:
    if run.status in ("completed", "failed", "cancelled"):
        raise Conflict(f"run {run.id} has already ended ({run.status})")
    run.cancel_requested = True
    if run.status == "queued":
        run.status = "cancelled"
    log.info("model_run.cancel_requested", run_id=str(run.id))


def prepare_retry(session: Session, run: ModelRun) -> int:
    """Queue a finished run again so only its failed steps are called; return how many."""
    if run.status in ("queued", "running"):
        raise Conflict(f"run {run.id} is {run.status}; wait until it ends")
    failed = (
        session.scalar(
            select(func.count())
            .select_from(ModelCall)
            .where(ModelCall.run_id == run.id, ~ModelCall.ok)
        )
        or 0
    )
    if not failed and run.status == "completed":
        raise Conflict(f"run {run.id} has no failed items to retry")
    session.execute(delete(ModelCall).where(ModelCall.run_id == run.id, ~ModelCall.ok))
    run.status = "queued"
    run.cancel_requested = False
    run.error = None
    log.info("model_run.retry", run_id=str(run.id), failed_steps=failed)
    return failed


def run_body(session: Session, run: ModelRun) -> dict[str, Any]:
    from app.modelrun.runner import failures, progress

    endpoint = session.get(ModelEndpoint, run.endpoint_id)
    model = session.get(Model, endpoint.model_id) if endpoint else None
    submissions = session.execute(
        select(Submission.id, Submission.axis, Submission.protocol, Submission.status).where(
            Submission.model_run_id == run.id
        )
    ).all()
    return {
        "id": str(run.id),
        "status": run.status,
        "model": model.name if model else None,
        "endpoint_id": run.endpoint_id,
        "flows": run.flows,
        "skipped_flows": {
            stem: reason
            for stem, reason in (possible_flows(endpoint).items() if endpoint else ())
            if reason is not None
        },
        "progress": progress(session, run),
        "failures": failures(session, run),
        "error": run.error,
        "cancel_requested": run.cancel_requested,
        "worker": _worker_state(run),
        "created_at": iso_utc(run.created_at),
        "started_at": iso_utc(run.started_at),
        "finished_at": iso_utc(run.finished_at),
        "submissions": [
            {
                "id": str(key),
                "axis": axis,
                "protocol": protocol,
                "status": status,
                "url": f"/submissions/{key}",
            }
            for key, axis, protocol, status in submissions
        ],
        "url": f"/runs/{run.id}",
    }


async def check_endpoint(
    session: Session, settings: Settings, endpoint: ModelEndpoint
) -> list[str]:
    """Send one small request to each configured endpoint; record and return the problems."""
    from app.modelrun.client import ModelClient
    from app.modelrun.runner import endpoint_configs, safe_factory

    chat, images = endpoint_configs(settings, endpoint)
    async with ModelClient(chat, images, client_factory=safe_factory(settings)) as client:
        problems = await client.check()
    endpoint.last_check_at = utc_now()
    endpoint.last_check_problems = problems
    log.info("endpoint.checked", endpoint_id=endpoint.id, problems=len(problems))
    return problems
