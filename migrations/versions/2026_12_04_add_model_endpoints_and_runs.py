"""Add model endpoints, runs and their call ledger, for benchmark runs by the service.

Revision ID: 7edf6a8523bb
Revises: 8bf506ad22ad
Create Date: 2026-12-04 21:11:59.957085
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7edf6a8523bb"
down_revision: str | None = "8bf506ad22ad"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("chat_base_url", sa.Text(), nullable=False),
        sa.Column("chat_model", sa.String(length=200), nullable=False),
        sa.Column("chat_api_key", sa.Text(), nullable=True),
        sa.Column("images_base_url", sa.Text(), nullable=True),
        sa.Column("images_model", sa.String(length=200), nullable=True),
        sa.Column("images_api_key", sa.Text(), nullable=True),
        sa.Column("supports_edit", sa.Boolean(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("requests_per_minute", sa.Float(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("max_items", sa.Integer(), nullable=True),
        sa.Column("last_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_check_problems", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_endpoints_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_model_endpoints_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_endpoints")),
    )
    op.create_index(
        op.f("ix_model_endpoints_owner_id"), "model_endpoints", ["owner_id"], unique=False
    )
    op.create_table(
        "model_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("benchmark_id", sa.Integer(), nullable=False),
        sa.Column("flows", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("items_total", sa.Integer(), nullable=False),
        sa.Column("items_done", sa.Integer(), nullable=False),
        sa.Column("items_failed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_model_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["benchmark_id"],
            ["benchmarks.id"],
            name=op.f("fk_model_runs_benchmark_id_benchmarks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["model_endpoints.id"],
            name=op.f("fk_model_runs_endpoint_id_model_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_model_runs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_runs")),
    )
    op.create_index(op.f("ix_model_runs_user_id"), "model_runs", ["user_id"], unique=False)
    op.create_table(
        "model_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=10), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("output_text", sa.Text(), nullable=True),
        sa.Column("output_image_sha256", sa.String(length=64), nullable=True),
        sa.Column("output_media_type", sa.String(length=20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["benchmark_items.id"],
            name=op.f("fk_model_calls_item_id_benchmark_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["model_runs.id"],
            name=op.f("fk_model_calls_run_id_model_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_calls")),
        sa.UniqueConstraint(
            "run_id", "item_id", "step", name=op.f("uq_model_calls_run_id_item_id_step")
        ),
    )
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("model_run_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            "fk_submissions_model_run_id_model_runs",
            "model_runs",
            ["model_run_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_constraint("fk_submissions_model_run_id_model_runs", type_="foreignkey")
        batch.drop_column("model_run_id")
    op.drop_table("model_calls")
    op.drop_index(op.f("ix_model_runs_user_id"), table_name="model_runs")
    op.drop_table("model_runs")
    op.drop_index(op.f("ix_model_endpoints_owner_id"), table_name="model_endpoints")
    op.drop_table("model_endpoints")
