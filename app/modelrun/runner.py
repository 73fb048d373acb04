"""Run the four RealUnify flows against a registered endpoint, resumably.

Each step's outcome is written to the ledger (``model_calls``) as soon as it returns, so a run
that stops (a dead worker, a cancel) resumes from its finished steps: only the steps without a
successful ledger row are called again. When every item is done, the outputs become normal
submissions, scored like uploads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app.benchmarks.layout import FILE_KINDS, FileKind
from app.config import Settings
from app.db import session_scope
from app.logs import get_logger
from app.modelrun.client import CallResult, EndpointConfig, ModelClient
from app.modelrun.service import outbound_policy, secret_box
from app.models import (
    Benchmark,
    BenchmarkItem,
    Model,
    ModelCall,
    ModelEndpoint,
    ModelRun,
    Prediction,
    Submission,
    utc_now,
)
from app.outbound.safety import safe_client
from app.uploads.images import stored_image_path

log = get_logger(__name__)

# The steps of each file, in order.
STEPS = {
    "UEG_direct": ("generate",),
    "UEG_step": ("rewrite", "generate"),
    "GEU_direct": ("answer",),
    "GEU_step": ("edit", "answer"),
}


class RunCancelled(Exception):
    pass


@dataclass(frozen=True)
class WorkItem:
    item_id: int
    stem: str
    public: dict[str, Any]


def progress(session: Session, run: ModelRun) -> dict[str, Any]:
    """Count the items done, failed and remaining, and estimate the time left."""
    calls = session.execute(
        select(ModelCall.item_id, ModelCall.step, ModelCall.ok, ModelCall.latency_ms).where(
            ModelCall.run_id == run.id
        )
    ).all()

    items = {
        row.id: row
        for row in session.execute(
            select(BenchmarkItem.id, BenchmarkItem.axis, BenchmarkItem.protocol).where(
                BenchmarkItem.id.in_({call.item_id for call in calls})
            )
        )
    }
    steps: dict[int, dict[str, bool]] = {}
    latencies: list[int] = []
    for call in calls:
        steps.setdefault(call.item_id, {})[call.step] = call.ok
        if call.ok and call.latency_ms is not None:
            latencies.append(call.latency_ms)

    done = failed = 0
    for item_id, outcome in steps.items():
        item = items.get(item_id)
        if item is None:
            continue
        stem = _stem(item.axis, item.protocol)
        needed = STEPS[stem]
        if any(outcome.get(step) is False for step in needed):
            failed += 1
        elif all(outcome.get(step) for step in needed):
            done += 1

    remaining = max(run.items_total - done - failed, 0)
    seconds = None
    if latencies and remaining and run.status in ("queued", "running"):
        endpoint = session.get(ModelEndpoint, run.endpoint_id)
        parallel = endpoint.concurrency if endpoint else 1
        # An estimate: an item takes one or two calls, so it counts as 1.5 average calls.
        seconds = round(sum(latencies) / len(latencies) / 1000 * 1.5 * remaining / parallel, 1)
    return {
        "total": run.items_total,
        "done": done,
        "failed": failed,
        "remaining": remaining,
        "estimated_seconds_left": seconds,
    }


MAX_LISTED_FAILURES = 50


def failures(session: Session, run: ModelRun) -> list[dict[str, Any]]:
    """List the failed steps with their errors, for the run page and the API."""
    rows = session.execute(
        select(
            BenchmarkItem.axis,
            BenchmarkItem.protocol,
            BenchmarkItem.item_key,
            ModelCall.step,
            ModelCall.error,
            ModelCall.attempts,
        )
        .join(BenchmarkItem, BenchmarkItem.id == ModelCall.item_id)
        .where(ModelCall.run_id == run.id, ~ModelCall.ok)
        .order_by(BenchmarkItem.axis, BenchmarkItem.protocol, BenchmarkItem.position)
        .limit(MAX_LISTED_FAILURES)
    ).all()
    return [
        {
            "file": _stem(axis, protocol),
            "item": item_key,
            "step": step,
            "error": error,
            "attempts": attempts,
        }
        for axis, protocol, item_key, step, error, attempts in rows
    ]


def _stem(axis: str, protocol: str) -> str:
    for kind in FILE_KINDS:
        if kind.axis == axis and kind.protocol == protocol:
            return kind.stem
    raise ValueError(f"no file for {axis} {protocol}")


class RunBusy(Exception):
    """Another worker holds the run's lease; ``seconds`` until it expires."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the run is being executed by another worker for {seconds:.0f} s more")
        self.seconds = seconds


def claim(run_id: uuid.UUID, owner: str, seconds: float) -> None:
    """Take or renew the run's lease; raise RunBusy while another worker holds it."""
    now = utc_now()
    expires = now + timedelta(seconds=seconds)
    with session_scope() as session:
        taken = session.execute(
            update(ModelRun)
            .where(
                ModelRun.id == run_id,
                or_(
                    ModelRun.lease_owner.is_(None),
                    ModelRun.lease_owner == owner,
                    ModelRun.lease_expires_at < now,
                ),
            )
            .values(lease_owner=owner, lease_expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 0:  # type: ignore[attr-defined]
            run = session.get(ModelRun, run_id)
            left = 1.0
            if run is not None and run.lease_expires_at is not None:
                held = run.lease_expires_at
                if held.tzinfo is None:
                    held = held.replace(tzinfo=UTC)
                left = max((held - now).total_seconds(), 1.0)
            raise RunBusy(left)


def release(run_id: uuid.UUID, owner: str) -> None:
    with session_scope() as session:
        session.execute(
            update(ModelRun)
            .where(ModelRun.id == run_id, ModelRun.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )


def execute_run(
    run_id: uuid.UUID,
    settings: Settings,
    client_factory: Callable[[EndpointConfig], httpx.AsyncClient] | None = None,
) -> str:
    """Run (or resume) the run's missing steps, then build its submissions. Returns the status.

    Raises RunBusy while another worker executes the same run.
    """
    owner = uuid.uuid4().hex
    claim(run_id, owner, settings.model_run_lease_seconds)
    try:
        return _execute(run_id, settings, client_factory, owner)
    finally:
        release(run_id, owner)


def _execute(
    run_id: uuid.UUID,
    settings: Settings,
    client_factory: Callable[[EndpointConfig], httpx.AsyncClient] | None,
    owner: str,
) -> str:
    with session_scope() as session:
        run = session.get(ModelRun, run_id)
        if run is None:
            log.warning("model_run.not_found", run_id=str(run_id))
            return "missing"
        if run.status in ("completed", "failed", "cancelled"):
            return run.status
        if run.cancel_requested:
            run.status = "cancelled"
            run.finished_at = utc_now()
            return run.status
        run.status = "running"
        run.started_at = run.started_at or utc_now()
        endpoint = session.get(ModelEndpoint, run.endpoint_id)
        benchmark = session.get(Benchmark, run.benchmark_id)
        if endpoint is None or benchmark is None:
            run.status = "failed"
            run.error = "the endpoint or the benchmark of this run was deleted"
            return run.status
        configs = endpoint_configs(settings, endpoint)
        work = _pending_work(session, run)
        concurrency = endpoint.concurrency
        folder = Path(benchmark.source_path)
    log.info("model_run.started", run_id=str(run_id), pending=len(work))

    factory = client_factory or safe_factory(settings)
    try:
        asyncio.run(
            _run_items(run_id, settings, configs, factory, work, concurrency, folder, owner)
        )
    except RunCancelled:
        with session_scope() as session:
            run = session.get(ModelRun, run_id)
            if run is not None:
                run.status = "cancelled"
                run.finished_at = utc_now()
        log.info("model_run.cancelled", run_id=str(run_id))
        return "cancelled"

    with session_scope() as session:
        run = session.get(ModelRun, run_id)
        if run is None:
            return "missing"
        submission_ids = _finalize(session, run)
        run.status = "completed"
        run.finished_at = utc_now()
        counts = progress(session, run)
        run.items_done, run.items_failed = counts["done"], counts["failed"]
    from app.submissions.queue import enqueue_scoring

    for submission_id in submission_ids:
        enqueue_scoring(submission_id)
    log.info("model_run.completed", run_id=str(run_id), **counts)
    return "completed"


def endpoint_configs(
    settings: Settings, endpoint: ModelEndpoint
) -> tuple[EndpointConfig, EndpointConfig | None]:
    box = secret_box(settings)
    common: dict[str, Any] = {
        "timeout_seconds": endpoint.timeout_seconds,
        "concurrency": endpoint.concurrency,
        "requests_per_minute": endpoint.requests_per_minute,
    }
    chat = EndpointConfig(
        base_url=endpoint.chat_base_url,
        model=endpoint.chat_model,
        api_key=box.decrypt(endpoint.chat_api_key) if endpoint.chat_api_key else "",
        **common,
    )
    images = None
    if endpoint.images_base_url and endpoint.images_model:
        images = EndpointConfig(
            base_url=endpoint.images_base_url,
            model=endpoint.images_model,
            api_key=box.decrypt(endpoint.images_api_key) if endpoint.images_api_key else "",
            **common,
        )
    return chat, images


def safe_factory(settings: Settings) -> Callable[[EndpointConfig], httpx.AsyncClient]:
    policy = outbound_policy(settings)

    def build(config: EndpointConfig) -> httpx.AsyncClient:
        return safe_client(dataclasses.replace(policy, timeout_seconds=config.timeout_seconds))

    return build


def _pending_work(session: Session, run: ModelRun) -> list[WorkItem]:
    """Items with a step still to call. Items whose step failed wait for an explicit retry,
    which deletes the failed ledger rows."""
    done: set[tuple[int, str]] = set()
    failed: set[int] = set()
    for item_id, step, ok in session.execute(
        select(ModelCall.item_id, ModelCall.step, ModelCall.ok).where(ModelCall.run_id == run.id)
    ):
        if ok:
            done.add((item_id, step))
        else:
            failed.add(item_id)
    work = []
    for kind in FILE_KINDS:
        if kind.stem not in run.flows:
            continue
        items = session.execute(
            select(BenchmarkItem.id, BenchmarkItem.public)
            .where(
                BenchmarkItem.benchmark_id == run.benchmark_id,
                BenchmarkItem.axis == kind.axis,
                BenchmarkItem.protocol == kind.protocol,
            )
            .order_by(BenchmarkItem.position)
        ).all()
        for item_id, public in items:
            if item_id in failed:
                continue
            if not all((item_id, step) in done for step in STEPS[kind.stem]):
                work.append(WorkItem(item_id, kind.stem, public))
    return work


async def _run_items(
    run_id: uuid.UUID,
    settings: Settings,
    configs: tuple[EndpointConfig, EndpointConfig | None],
    factory: Callable[[EndpointConfig], httpx.AsyncClient],
    work: list[WorkItem],
    concurrency: int,
    folder: Path,
    owner: str,
) -> None:
    chat, images = configs
    queue: asyncio.Queue[WorkItem] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    async with ModelClient(chat, images, client_factory=factory) as client:
        cancelled = False

        async def worker() -> None:
            # A cancel stops the workers taking new items; the items in flight finish and are
            # recorded, so their calls are not lost.
            nonlocal cancelled
            while not queue.empty() and not cancelled:
                item = queue.get_nowait()
                if await asyncio.to_thread(_cancel_requested, run_id):
                    cancelled = True
                    return
                await asyncio.to_thread(claim, run_id, owner, settings.model_run_lease_seconds)
                await _run_item(run_id, settings, client, item, folder)

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    if cancelled:
        raise RunCancelled


def _cancel_requested(run_id: uuid.UUID) -> bool:
    with session_scope() as session:
        run = session.get(ModelRun, run_id)
        return run is None or run.cancel_requested


async def _run_item(
    run_id: uuid.UUID, settings: Settings, client: ModelClient, item: WorkItem, folder: Path
) -> None:
    earlier = await asyncio.to_thread(_ledger_outputs, run_id, item.item_id)
    public = item.public
    for step in STEPS[item.stem]:
        if step in earlier and earlier[step].ok:
            continue
        if step == "rewrite":
            prompt = public["new_prompt"]
            result = await client.chat(prompt)
            inputs: tuple[str, ...] = (prompt,)
        elif step == "generate":
            prompt = public["prompt"] if item.stem == "UEG_direct" else _text(earlier, "rewrite")
            result = await client.generate_image(prompt)
            inputs = (prompt,)
        elif step == "edit":
            image, media_type = _input_image(folder, public)
            result = await client.edit_image(image, media_type, public["edit_prompt"])
            inputs = (hashlib.sha256(image).hexdigest(), public["edit_prompt"])
        else:  # answer
            if item.stem == "GEU_step":
                image, media_type = _stored(settings, earlier["edit"])
            else:
                image, media_type = _input_image(folder, public)
            result = await client.chat(public["evaluation_prompt"], image, media_type)
            inputs = (hashlib.sha256(image).hexdigest(), public["evaluation_prompt"])
        call = await asyncio.to_thread(
            _record, run_id, item.item_id, step, inputs, result, settings
        )
        earlier[step] = call
        if not call.ok:
            return


@dataclass(frozen=True)
class LedgerOutput:
    ok: bool
    text: str | None
    image_sha256: str | None
    media_type: str | None


def _ledger_outputs(run_id: uuid.UUID, item_id: int) -> dict[str, LedgerOutput]:
    with session_scope() as session:
        return {
            call.step: LedgerOutput(
                call.ok, call.output_text, call.output_image_sha256, call.output_media_type
            )
            for call in session.scalars(
                select(ModelCall).where(ModelCall.run_id == run_id, ModelCall.item_id == item_id)
            )
        }


def _text(earlier: dict[str, LedgerOutput], step: str) -> str:
    return earlier[step].text or ""


def _input_image(folder: Path, public: dict[str, Any]) -> tuple[bytes, str]:
    reference = public["image"][0] if isinstance(public["image"], list) else public["image"]
    path = (folder / reference).resolve()
    data = path.read_bytes()
    media_type = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(
        path.suffix.lower(), "image/png"
    )
    return data, media_type


def _stored(settings: Settings, output: LedgerOutput) -> tuple[bytes, str]:
    assert output.image_sha256 and output.media_type
    path = stored_image_path(settings.storage_dir, output.image_sha256, output.media_type)
    return path.read_bytes(), output.media_type


def _record(
    run_id: uuid.UUID,
    item_id: int,
    step: str,
    inputs: tuple[str, ...],
    result: CallResult,
    settings: Settings,
) -> LedgerOutput:
    sha256 = None
    if result.error is None and result.image is not None and result.media_type:
        sha256 = _store_image(settings, result.image, result.media_type)
    ok = result.error is None and (result.text is not None or sha256 is not None)
    request_hash = hashlib.sha256("\0".join((step, *inputs)).encode("utf-8")).hexdigest()
    with session_scope() as session:
        call = session.scalar(
            select(ModelCall).where(
                ModelCall.run_id == run_id, ModelCall.item_id == item_id, ModelCall.step == step
            )
        )
        if call is None:
            call = ModelCall(run_id=run_id, item_id=item_id, step=step, attempts=0)
            session.add(call)
        call.request_hash = request_hash
        call.ok = ok
        call.output_text = result.text
        call.output_image_sha256 = sha256
        call.output_media_type = result.media_type if sha256 else None
        call.error = None if ok else (result.error or "empty response")[:2000]
        call.latency_ms = result.latency_ms
        call.attempts += result.attempts
        call.created_at = utc_now()
    if not ok:
        log.warning(
            "model_run.step_failed",
            run_id=str(run_id),
            item_id=item_id,
            step=step,
            error=(result.error or "empty response")[:200],
        )
    return LedgerOutput(ok, result.text, sha256, result.media_type if sha256 else None)


def _store_image(settings: Settings, data: bytes, media_type: str) -> str:
    sha256 = hashlib.sha256(data).hexdigest()
    target = stored_image_path(settings.storage_dir, sha256, media_type)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, target)
    return sha256


def _finalize(session: Session, run: ModelRun) -> list[uuid.UUID]:
    """Turn the ledger into one submission per file, replacing the run's earlier ones."""
    endpoint = session.get(ModelEndpoint, run.endpoint_id)
    assert endpoint is not None
    session.execute(delete(Submission).where(Submission.model_run_id == run.id))
    calls: dict[tuple[int, str], ModelCall] = {
        (call.item_id, call.step): call
        for call in session.scalars(select(ModelCall).where(ModelCall.run_id == run.id))
    }
    created = []
    for kind in FILE_KINDS:
        if kind.stem not in run.flows:
            continue
        submission = _submission(session, run, endpoint, kind, calls)
        created.append(submission.id)
    session.flush()
    return created


def _submission(
    session: Session,
    run: ModelRun,
    endpoint: ModelEndpoint,
    kind: FileKind,
    calls: dict[tuple[int, str], ModelCall],
) -> Submission:
    items = session.scalars(
        select(BenchmarkItem).where(
            BenchmarkItem.benchmark_id == run.benchmark_id,
            BenchmarkItem.axis == kind.axis,
            BenchmarkItem.protocol == kind.protocol,
        )
    ).all()
    model = session.get(Model, endpoint.model_id)
    submission = Submission(
        id=uuid.uuid4(),
        user_id=run.user_id,
        model_id=endpoint.model_id,
        benchmark_id=run.benchmark_id,
        axis=kind.axis,
        protocol=kind.protocol,
        status="queued",
        upload_filename=f"{kind.stem} run by the service",
        upload_sha256=hashlib.sha256(str(run.id).encode()).hexdigest(),
        upload_format="run",
        matched_by="index",
        item_count=len(items),
        model_run_id=run.id,
    )
    session.add(submission)
    session.flush()
    missing_images = 0
    for item in items:
        fields = _fields(kind, item.id, calls)
        if kind.axis == "UEG" and "image_sha256" not in fields:
            missing_images += 1
        session.add(Prediction(submission_id=submission.id, item_id=item.id, fields=fields))
    submission.missing_image_count = missing_images
    log.info(
        "model_run.submission",
        run_id=str(run.id),
        submission_id=str(submission.id),
        file=kind.stem,
        model=model.name if model else None,
    )
    return submission


def _fields(
    kind: FileKind, item_id: int, calls: dict[tuple[int, str], ModelCall]
) -> dict[str, Any]:
    """The prediction an upload would carry for this item; a failed step leaves its field empty,
    which scores 0 like a missing image or an empty answer."""

    def ok(step: str) -> ModelCall | None:
        call = calls.get((item_id, step))
        return call if call is not None and call.ok else None

    fields: dict[str, Any] = {}
    if kind.axis == "GEU":
        answer = ok("answer")
        fields["response"] = answer.output_text if answer and answer.output_text else ""
        edit = ok("edit")
        if kind.stem == "GEU_step" and edit is not None:
            fields["edit_image"] = f"service:{edit.output_image_sha256}"
        return fields
    rewrite = ok("rewrite")
    if kind.stem == "UEG_step":
        fields["response"] = rewrite.output_text if rewrite and rewrite.output_text else ""
    generated = ok("generate")
    if generated is not None and generated.output_image_sha256:
        fields["generated_image"] = f"service:{generated.output_image_sha256}"
        fields["image_sha256"] = generated.output_image_sha256
        fields["media_type"] = generated.output_media_type
    return fields


def unfinished_runs() -> list[uuid.UUID]:
    """Runs left queued or running, e.g. by a worker that died; a starting worker resumes them."""
    with session_scope() as session:
        return list(
            session.scalars(select(ModelRun.id).where(ModelRun.status.in_(("queued", "running"))))
        )
