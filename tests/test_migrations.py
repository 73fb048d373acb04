"""The Alembic migrations build the schema the models describe, and revert it fully."""

from __future__ import annotations

import secrets

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from app import migrate
from app.db import Base
from tests.conftest import ADMIN_URL, create_database, drop_database


def test_migrations_upgrade_downgrade_upgrade() -> None:
    name = f"realunify_migrations_{secrets.token_hex(4)}"
    url = make_url(ADMIN_URL).set(database=name).render_as_string(False)
    create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(url)
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []

        migrate.downgrade(url, "base")
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) <= {"alembic_version"}

        migrate.upgrade(url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
        drop_database(name)


def test_migrations_run_on_sqlite(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'board.sqlite3'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        migrate.downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
