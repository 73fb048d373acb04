"""Score UEG submissions: a judge model answers each question about each generated image.

An item passes only when every question's reply matches the stored answer. An item without an
image scores 0. An item whose judge call failed is a judge error: neither a pass nor a fail, so
its category stays undefined until it is judged again. Every call goes to the ledger
(``judge_calls``), and identical calls are answered from it instead of the judge.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.judging.client import PROMPT_VERSION, JudgeClient, JudgeConfig, JudgeRequest, JudgeResult
from app.logs import get_logger
from app.models import BenchmarkItem, JudgeCall
from app.uploads.images import stored_image_path

log = get_logger(__name__)

DEMO_JUDGE_MODEL = "demo-shape-judge"


@dataclass(frozen=True)
class UegVerdict:
    item_id: int
    correct: bool
    judge_error: bool
    reason: str
    details: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JudgeStats:
    ledger_hits: int = 0
    judge_calls: int = 0
    judge_errors: int = 0


def judge_config(settings: Settings) -> JudgeConfig:
    return JudgeConfig(
        base_url=settings.judge_url,
        model=settings.judge_model,
        api_key=settings.judge_api_key.get_secret_value(),
        timeout_seconds=settings.judge_timeout_seconds,
        concurrency=settings.judge_concurrency,
        requests_per_second=settings.judge_requests_per_second,
        max_attempts=settings.judge_max_attempts,
    )


def cache_key(image_sha256: str, question: str, model: str, prompt_version: str) -> str:
    parts = "\0".join((image_sha256, question, model, prompt_version))
    return hashlib.sha256(parts.encode("utf-8")).hexdigest()


def judge_items(
    session: Session,
    settings: Settings,
    submission_id: Any,
    items: Sequence[BenchmarkItem],
    predictions: dict[int, dict[str, Any]],
) -> tuple[list[UegVerdict], JudgeStats]:
    """Judge every question of every item, from the ledger where possible."""
    config = judge_config(settings)
    stats = JudgeStats()
    answers: dict[str, JudgeCall] = {}
    wanted: dict[str, JudgeRequest] = {}
    image_of_key: dict[str, str] = {}
    keys_by_item: dict[int, list[str]] = {}

    image_bytes: dict[str, bytes] = {}
    for item in items:
        fields = predictions.get(item.id) or {}
        sha256 = fields.get("image_sha256")
        if not sha256:
            continue
        keys = []
        for question in item.private["question_list"]:
            key = cache_key(sha256, question["question"], config.model, PROMPT_VERSION)
            keys.append(key)
            if key in wanted or key in answers:
                continue
            cached = session.scalar(
                select(JudgeCall)
                .where(JudgeCall.cache_key == key, JudgeCall.answer.is_not(None))
                .order_by(JudgeCall.id.desc())
                .limit(1)
            )
            if cached is not None:
                answers[key] = cached
                stats.ledger_hits += 1
                continue
            if sha256 not in image_bytes:
                path = stored_image_path(settings.storage_dir, sha256, fields["media_type"])
                image_bytes[sha256] = Path(path).read_bytes()
            image_of_key[key] = sha256
            wanted[key] = JudgeRequest(
                key=key,
                image=image_bytes[sha256],
                media_type=fields["media_type"],
                question=question["question"],
            )
        keys_by_item[item.id] = keys

    results = asyncio.run(_judge(config, list(wanted.values()))) if wanted else []
    stats.judge_calls = len(results)
    for result in results:
        request = wanted[result.key]
        call = JudgeCall(
            cache_key=result.key,
            image_sha256=image_of_key[result.key],
            question=request.question,
            judge_model=config.model,
            prompt_version=PROMPT_VERSION,
            raw_reply=result.raw_reply,
            answer=result.answer,
            error=result.error,
            latency_ms=result.latency_ms,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            attempts=result.attempts,
            submission_id=submission_id,
        )
        session.add(call)
        answers[result.key] = call
        stats.judge_errors += result.answer is None
    session.flush()

    verdicts = [_verdict(item, predictions.get(item.id), keys_by_item, answers) for item in items]
    log.info(
        "judge.summary",
        submission_id=str(submission_id),
        ledger_hits=stats.ledger_hits,
        judge_calls=stats.judge_calls,
        judge_errors=stats.judge_errors,
        judge_model=config.model,
    )
    return verdicts, stats


async def _judge(config: JudgeConfig, requests: list[JudgeRequest]) -> list[JudgeResult]:
    async with JudgeClient(config) as client:
        return await client.judge_many(requests)


def _verdict(
    item: BenchmarkItem,
    fields: dict[str, Any] | None,
    keys_by_item: dict[int, list[str]],
    answers: dict[str, JudgeCall],
) -> UegVerdict:
    if fields is None:
        return UegVerdict(item.id, False, False, "missing from the upload")
    if not fields.get("image_sha256"):
        reference = fields.get("generated_image")
        reason = (
            f"image {reference!r} not in the upload" if reference else "no generated_image given"
        )
        return UegVerdict(item.id, False, False, reason)

    details = []
    failed = []
    errors = []
    for number, (question, key) in enumerate(
        zip(item.private["question_list"], keys_by_item[item.id], strict=True), start=1
    ):
        call = answers[key]
        expected = question["answer"] == "yes"
        reply_word = None
        if call.answer is not None:
            reply_word = "yes" if call.answer else "no"
        details.append(
            {
                "question": question["question"],
                "expected": question["answer"],
                "reply": call.raw_reply,
                "answer": reply_word,
                "error": call.error,
                "judge_call_id": call.id,
            }
        )
        if call.answer is None:
            errors.append(f"question {number}: {call.error}")
        elif call.answer != expected:
            failed.append(str(number))
    if errors:
        return UegVerdict(item.id, False, True, "judge error on " + "; ".join(errors), details)
    if failed:
        reason = f"judge's reply differs from the expected answer on question {', '.join(failed)}"
        return UegVerdict(item.id, False, False, reason, details)
    return UegVerdict(item.id, True, False, "every question answered as expected", details)
