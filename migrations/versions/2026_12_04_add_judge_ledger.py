"""Add the judge-call ledger and the UEG judge columns of submissions, verdicts and scores.

Revision ID: 1994cf551812
Revises: 6fe08b8491bf
Create Date: 2026-12-04 20:32:17.295326
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1994cf551812"
down_revision: str | None = "6fe08b8491bf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "judge_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("judge_model", sa.String(length=200), nullable=False),
        sa.Column("prompt_version", sa.String(length=40), nullable=False),
        sa.Column("raw_reply", sa.Text(), nullable=True),
        sa.Column("answer", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_judge_calls_submission_id_submissions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judge_calls")),
    )
    op.create_index("ix_judge_calls_cache_key", "judge_calls", ["cache_key"], unique=False)
    op.create_index(
        op.f("ix_judge_calls_submission_id"), "judge_calls", ["submission_id"], unique=False
    )
    op.add_column(
        "item_verdicts",
        sa.Column("judge_error", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("item_verdicts", sa.Column("details", sa.JSON(), nullable=True))
    op.add_column(
        "score_aggregates",
        sa.Column("judge_errors", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("submissions", sa.Column("judge_model", sa.String(length=200), nullable=True))
    op.add_column(
        "submissions", sa.Column("judge_prompt_version", sa.String(length=40), nullable=True)
    )
    op.add_column(
        "submissions",
        sa.Column("judge_error_count", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "submissions",
        sa.Column("missing_image_count", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("submissions", "missing_image_count")
    op.drop_column("submissions", "judge_error_count")
    op.drop_column("submissions", "judge_prompt_version")
    op.drop_column("submissions", "judge_model")
    op.drop_column("score_aggregates", "judge_errors")
    op.drop_column("item_verdicts", "details")
    op.drop_column("item_verdicts", "judge_error")
    op.drop_index(op.f("ix_judge_calls_submission_id"), table_name="judge_calls")
    op.drop_index("ix_judge_calls_cache_key", table_name="judge_calls")
    op.drop_table("judge_calls")
