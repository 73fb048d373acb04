"""Shared fixtures: a PostgreSQL database built by our migrations, Redis, and a Celery worker.

The environment is set before any ``app`` module is imported, because settings are read once.
``REALUNIFY_TEST_ADMIN_URL`` names the PostgreSQL server (default: trust auth on 127.0.0.1) and
``REALUNIFY_TEST_REDIS_URL`` the Redis server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

RUN_ID = secrets.token_hex(4)
ADMIN_URL = os.environ.get(
    "REALUNIFY_TEST_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("REALUNIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_DATABASE = f"realunify_test_{RUN_ID}"
TEST_DATABASE_URL = make_url(ADMIN_URL).set(database=TEST_DATABASE).render_as_string(False)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(tempfile.mkdtemp(prefix="realunify-test-"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


JUDGE_PORT = free_port()

os.environ.update(
    {
        "REALUNIFY_ENVIRONMENT": "test",
        "REALUNIFY_DATABASE_URL": TEST_DATABASE_URL,
        "REALUNIFY_BROKER_URL": REDIS_URL,
        # A queue per run, so parallel runs on one Redis never take each other's tasks.
        "REALUNIFY_TASK_QUEUE": f"realunify-test-{RUN_ID}",
        "REALUNIFY_SECRET_KEY": secrets.token_hex(32),
        "REALUNIFY_DATA_DIR": str(DATA_DIR),
        # Tests read the leaderboard right after scoring, so it must not keep an old state.
        "REALUNIFY_LEADERBOARD_CACHE_SECONDS": "0",
        # The stand-in judge of the tests; short timeouts and two attempts make faults visible.
        "REALUNIFY_JUDGE_BASE_URL": f"http://127.0.0.1:{JUDGE_PORT}/v1",
        "REALUNIFY_JUDGE_TIMEOUT_SECONDS": "2",
        "REALUNIFY_JUDGE_MAX_ATTEMPTS": "2",
        "REALUNIFY_JUDGE_CONCURRENCY": "8",
        # The stand-in model servers of the tests listen on 127.0.0.1.
        "REALUNIFY_OUTBOUND_ALLOWLIST": "127.0.0.1/32",
        # A killed worker's model run is resumed after this lease ends.
        "REALUNIFY_MODEL_RUN_LEASE_SECONDS": "3",
    }
)

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app import migrate  # noqa: E402
from app.config import get_settings  # noqa: E402
from app.db import get_engine  # noqa: E402

USER_TABLES = (
    "judge_calls",
    "item_verdicts",
    "score_aggregates",
    "predictions",
    "submissions",
    "model_calls",
    "model_runs",
    "model_endpoints",
    "api_tokens",
    "users",
)


def create_database(name: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def drop_database(name: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    """Create the test database, migrate it to head and load the demo benchmark and references."""
    create_database(TEST_DATABASE)
    try:
        migrate.upgrade(TEST_DATABASE_URL)
        from app.benchmarks.service import load_benchmark
        from app.db import session_scope
        from app.leaderboard.reference import load_reference_rows

        settings = get_settings()
        with session_scope() as session:
            load_benchmark(
                session, settings.demo_benchmark_path, settings.benchmark_name, is_demo=True
            )
            load_reference_rows(session)
        yield TEST_DATABASE_URL
    finally:
        get_engine().dispose()
        drop_database(TEST_DATABASE)
        shutil.rmtree(DATA_DIR, ignore_errors=True)


@pytest.fixture
def db_session() -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    connection = get_engine().connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def committed() -> Iterator[None]:
    """For tests whose rows must be visible to other processes: empties user tables afterwards."""
    yield
    with get_engine().begin() as connection:
        # DELETE rather than TRUNCATE ... CASCADE, which would also empty the reference models.
        for table in USER_TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(text("DELETE FROM models WHERE NOT is_reference"))


def start_worker(
    queue: str, log_path: Path, env: dict[str, str], ready_lines: int = 1
) -> subprocess.Popen[bytes]:
    """Start a Celery worker on ``queue``, appending to ``log_path``, and wait until it is ready.

    ``ready_lines`` is how many "ready." lines the log holds once this worker is up, for a log
    shared by workers started one after another.
    """
    handle = log_path.open("ab")
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker"]
    command += ["--pool", "solo", "--queues", queue, "--loglevel", "INFO"]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=handle, stderr=subprocess.STDOUT, env=env
    )
    handle.close()
    deadline = time.monotonic() + 60
    while log_path.read_text(errors="replace").count("ready.") < ready_lines:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return process


@pytest.fixture(scope="session")
def celery_worker_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process on the run's Redis queue."""
    log_path = PROJECT_ROOT / ".pytest-worker.log"
    log_path.write_text("")
    process = start_worker(get_settings().task_queue, log_path, os.environ.copy())
    yield process
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def live_client() -> Iterator[TestClient]:
    """A client whose requests commit, so worker processes see their rows."""
    from app.main import app

    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def judge_server() -> Iterator[str]:
    """The stand-in judge on 127.0.0.1, as the worker's judge; yields its base URL."""
    command = [sys.executable, "-m", "app.judging.standin", "--host", "127.0.0.1"]
    command += ["--port", str(JUDGE_PORT), "--timeout-fault-seconds", "5", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT)
    base_url = f"http://127.0.0.1:{JUDGE_PORT}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base_url}/v1/models", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the stand-in judge did not start") from None
            time.sleep(0.2)
    yield base_url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def client(db_session: Session) -> Iterator[TestClient]:
    """A client whose requests share the test's rolled-back transaction."""

    def session_override() -> Iterator[Session]:
        yield db_session
        db_session.flush()

    from app.main import app
    from app.web.deps import get_session

    app.dependency_overrides[get_session] = session_override
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
def token(db_session: Session) -> str:
    from tests.builders import create_user_with_token

    return create_user_with_token(db_session)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
