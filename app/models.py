"""Database tables. Relationships raise on lazy load, so every query states what it loads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false

from app.db import Base

AXES = ("UEG", "GEU")
PROTOCOLS = ("direct", "stepwise")
SUBMISSION_STATUSES = ("queued", "running", "scored", "failed")
MODEL_KINDS = (
    "unified",
    "understanding specialist",
    "generation specialist",
    "specialist pipeline",
    "other",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """Format a timestamp as ISO 8601 in UTC; SQLite returns them without a time zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # NULL for accounts made on the command line that only use API tokens.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", lazy="raise")


class ApiToken(Base):
    """A bearer token for scripts. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, shown in lists so a user can tell tokens apart.
    token_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="tokens", lazy="raise")


class Benchmark(Base):
    """One loaded version of a benchmark folder; ``version`` is the SHA-256 of its content."""

    __tablename__ = "benchmarks"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # Per file: format, item count and the input-image field that was found.
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class BenchmarkItem(Base):
    """An item of one benchmark file.

    ``private`` contains answers and questions and is never shown.
    """

    __tablename__ = "benchmark_items"
    __table_args__ = (
        UniqueConstraint("benchmark_id", "axis", "protocol", "item_key"),
        Index("ix_benchmark_items_content", "benchmark_id", "axis", "protocol", "content_key"),
        CheckConstraint(_in("axis", AXES), name="axis"),
        CheckConstraint(_in("protocol", PROTOCOLS), name="protocol"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"))
    axis: Mapped[str] = mapped_column(String(3))
    protocol: Mapped[str] = mapped_column(String(10))
    # The item's `index` as text, or its content key when the file has no `index`.
    item_key: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    content_key: Mapped[str] = mapped_column(String(64))
    task_type: Mapped[str] = mapped_column(String(64))
    subtask: Mapped[str | None] = mapped_column(String(100))
    # Fields a model is given: prompts and the input image path.
    public: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Fields used for scoring: `answer` for GEU, `question_list` for UEG.
    private: Mapped[dict[str, Any]] = mapped_column(JSON)


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (CheckConstraint(_in("kind", MODEL_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    link: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Reference rows contain results reported by a publication, which `source` names.
    is_reference: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ModelEndpoint(Base):
    """A model's HTTP endpoints that the workers call to run the benchmark.

    API keys are stored encrypted (see app.outbound.secrets) and never shown back.
    """

    __tablename__ = "model_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    chat_base_url: Mapped[str] = mapped_column(Text)
    chat_model: Mapped[str] = mapped_column(String(200))
    chat_api_key: Mapped[str | None] = mapped_column(Text)
    # The images endpoint serves generations and, when supports_edit, edits.
    images_base_url: Mapped[str | None] = mapped_column(Text)
    images_model: Mapped[str | None] = mapped_column(String(200))
    images_api_key: Mapped[str | None] = mapped_column(Text)
    supports_edit: Mapped[bool] = mapped_column(Boolean, default=False)
    concurrency: Mapped[int] = mapped_column(Integer, default=4)
    requests_per_minute: Mapped[float] = mapped_column(Float, default=0.0)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=120.0)
    max_items: Mapped[int | None] = mapped_column(Integer)
    last_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_check_problems: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled")


class ModelRun(Base):
    """One run of the benchmark flows against a registered endpoint."""

    __tablename__ = "model_runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("model_endpoints.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"))
    # Benchmark files to run, e.g. ["UEG_direct", "GEU_step"].
    flows: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The worker executing the run holds a lease and renews it after each item, so a second
    # delivery of the task waits instead of calling the endpoints twice.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    items_total: Mapped[int] = mapped_column(Integer, default=0)
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    items_failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ModelCall(Base):
    """The ledger of a run: one row per item and step, updated when the step is retried."""

    __tablename__ = "model_calls"
    __table_args__ = (UniqueConstraint("run_id", "item_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("model_runs.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("benchmark_items.id", ondelete="CASCADE"))
    # "rewrite", "generate", "edit" or "answer".
    step: Mapped[str] = mapped_column(String(10))
    request_hash: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    output_text: Mapped[str | None] = mapped_column(Text)
    output_image_sha256: Mapped[str | None] = mapped_column(String(64))
    output_media_type: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ReferenceResult(Base):
    """A per-category accuracy reported by a publication, in percent."""

    __tablename__ = "reference_results"
    __table_args__ = (
        UniqueConstraint("model_id", "protocol", "task_type"),
        CheckConstraint(_in("protocol", PROTOCOLS), name="protocol"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    protocol: Mapped[str] = mapped_column(String(10))
    task_type: Mapped[str] = mapped_column(String(64))
    accuracy_percent: Mapped[float] = mapped_column(Float)
    item_count: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        CheckConstraint(_in("axis", AXES), name="axis"),
        CheckConstraint(_in("protocol", PROTOCOLS), name="protocol"),
        CheckConstraint(_in("status", SUBMISSION_STATUSES), name="status"),
        Index("ix_submissions_board", "benchmark_id", "model_id", "protocol", "axis", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"))
    axis: Mapped[str] = mapped_column(String(3))
    protocol: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    upload_filename: Mapped[str] = mapped_column(String(255))
    upload_sha256: Mapped[str] = mapped_column(String(64))
    upload_format: Mapped[str] = mapped_column(String(10))
    # "index" or "content": how the upload's items were matched to the benchmark's.
    matched_by: Mapped[str] = mapped_column(String(10))
    item_count: Mapped[int] = mapped_column(Integer)
    missing_count: Mapped[int] = mapped_column(Integer, default=0)
    scorer_version: Mapped[str | None] = mapped_column(String(40))
    # UEG only: the judge that answered the questions, and how many items it failed to judge.
    judge_model: Mapped[str | None] = mapped_column(String(200))
    judge_prompt_version: Mapped[str | None] = mapped_column(String(40))
    judge_error_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    missing_image_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when the service produced the predictions by calling a registered endpoint.
    model_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("model_runs.id", ondelete="SET NULL")
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    model: Mapped[Model] = relationship(lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")
    benchmark: Mapped[Benchmark] = relationship(lazy="raise")


class ScoringRun(Base):
    """A version of the scores: every verdict and aggregate belongs to one run.

    New submissions are scored into the current run. ``realunify-board rescore`` scores every
    submission again into a new run, which becomes current once all are done, so the
    leaderboard can show an older version next to the current one.
    """

    __tablename__ = "scoring_runs"
    __table_args__ = (CheckConstraint(_in("status", ("running", "complete")), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The scorer versions and judge used, e.g. "geu-choice-1, ueg-judge-1 (demo-shape-judge)".
    label: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10), default="complete")
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    submissions_total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Prediction(Base):
    """The submitter's fields for one item (`response`, `edit_image`, `generated_image`)."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("submission_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE")
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("benchmark_items.id", ondelete="CASCADE"))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)


class ItemVerdict(Base):
    """The scorer's outcome for one item: what was read from the prediction, and why."""

    __tablename__ = "item_verdicts"
    __table_args__ = (UniqueConstraint("scoring_run_id", "submission_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scoring_run_id: Mapped[int] = mapped_column(
        ForeignKey("scoring_runs.id", ondelete="CASCADE"), index=True
    )
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE")
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("benchmark_items.id", ondelete="CASCADE"))
    extracted: Mapped[str | None] = mapped_column(String(20))
    correct: Mapped[bool] = mapped_column(Boolean)
    # True when the judge gave no usable reply: the item is then neither a pass nor a fail.
    judge_error: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reason: Mapped[str] = mapped_column(Text)
    # UEG: one entry per question with the expected answer, the judge's reply and the ledger id.
    details: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    item: Mapped[BenchmarkItem] = relationship(lazy="raise")


class ScoreAggregate(Base):
    """Accuracy at one level: ``subtask`` (key ``task_type/subtask``), ``category`` or ``axis``.

    ``accuracy`` is a fraction in [0, 1], or NULL when undefined.
    """

    __tablename__ = "score_aggregates"
    __table_args__ = (
        UniqueConstraint("scoring_run_id", "submission_id", "level", "key"),
        CheckConstraint(_in("level", ("subtask", "category", "axis")), name="level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scoring_run_id: Mapped[int] = mapped_column(
        ForeignKey("scoring_runs.id", ondelete="CASCADE"), index=True
    )
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE")
    )
    level: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(200))
    correct: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int | None] = mapped_column(Integer)
    # Items the judge could not score; the accuracy is undefined while any remain.
    judge_errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accuracy: Mapped[float | None] = mapped_column(Float)


class JudgeCall(Base):
    """One request to a judge model, kept so identical requests are served from here.

    ``cache_key`` hashes the image, question, judge model and prompt version. Only rows with a
    parsed ``answer`` are reused; failed calls are kept for the record.
    """

    __tablename__ = "judge_calls"
    __table_args__ = (Index("ix_judge_calls_cache_key", "cache_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(64))
    image_sha256: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    judge_model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(40))
    raw_reply: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    submission_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
