"""Add scoring runs, so scores are versioned and a rescore keeps the previous version.

Revision ID: 8bf506ad22ad
Revises: 1994cf551812
Create Date: 2026-12-04 20:56:11.018740
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "8bf506ad22ad"
down_revision: str | None = "1994cf551812"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = (
    ("item_verdicts", ("submission_id", "item_id")),
    ("score_aggregates", ("submission_id", "level", "key")),
)


def upgrade() -> None:
    runs = op.create_table(
        "scoring_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("submissions_total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'complete')", name=op.f("ck_scoring_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_runs")),
    )
    # Scores that exist already become the first, current version.
    now = datetime.now(UTC)
    op.bulk_insert(
        runs,
        [
            {
                "label": "initial scores",
                "status": "complete",
                "is_current": True,
                "submissions_total": 0,
                "created_at": now,
                "completed_at": now,
            }
        ],
    )
    for table, old_columns in TABLES:
        op.add_column(table, sa.Column("scoring_run_id", sa.Integer(), nullable=True))
        # The id is left to the database, so its sequence stays in step on PostgreSQL.
        op.execute(
            sa.text(f"UPDATE {table} SET scoring_run_id = (SELECT min(id) FROM scoring_runs)")
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("scoring_run_id", existing_type=sa.Integer(), nullable=False)
            batch.drop_constraint(f"uq_{table}_{'_'.join(old_columns)}", type_="unique")
            batch.create_unique_constraint(
                f"uq_{table}_scoring_run_id_{'_'.join(old_columns)}",
                ["scoring_run_id", *old_columns],
            )
            batch.create_foreign_key(
                f"fk_{table}_scoring_run_id_scoring_runs",
                "scoring_runs",
                ["scoring_run_id"],
                ["id"],
                ondelete="CASCADE",
            )
        op.create_index(f"ix_{table}_scoring_run_id", table, ["scoring_run_id"])


def downgrade() -> None:
    for table, old_columns in TABLES:
        # Only the current version's scores can stay under the old unique constraint.
        op.execute(
            sa.text(
                f"DELETE FROM {table} WHERE scoring_run_id NOT IN "
                "(SELECT id FROM scoring_runs WHERE is_current)"
            )
        )
        op.drop_index(f"ix_{table}_scoring_run_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_scoring_run_id_scoring_runs", type_="foreignkey")
            batch.drop_constraint(
                f"uq_{table}_scoring_run_id_{'_'.join(old_columns)}", type_="unique"
            )
            batch.create_unique_constraint(f"uq_{table}_{'_'.join(old_columns)}", list(old_columns))
            batch.drop_column("scoring_run_id")
    op.drop_table("scoring_runs")
