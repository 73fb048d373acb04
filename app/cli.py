"""The ``realunify-board`` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.config import get_settings

app = typer.Typer(help="RealUnify leaderboard service.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
benchmark_app = typer.Typer(help="Benchmark data.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts and API tokens.", no_args_is_help=True)
reference_app = typer.Typer(help="Results reported by publications.", no_args_is_help=True)
demo_app = typer.Typer(help="The bundled demo benchmark and baselines.", no_args_is_help=True)
submissions_app = typer.Typer(help="Submissions.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(users_app, name="users")
app.add_typer(reference_app, name="reference")
app.add_typer(demo_app, name="demo")
app.add_typer(submissions_app, name="submissions")


@app.callback()
def _setup() -> None:
    from app.logs import configure_logging

    configure_logging()


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from app import migrate

    migrate.upgrade(revision=revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" empties the database)."""
    from app import migrate

    migrate.downgrade(revision=revision)
    typer.echo(f"database at {revision}")


@benchmark_app.command("load")
def benchmark_load(
    path: Annotated[Path, typer.Argument(help="Folder in the official RealUnify layout")],
    name: Annotated[str | None, typer.Option(help="Benchmark name (default from settings)")] = None,
    demo: Annotated[bool, typer.Option(help="Mark it as demo data on the pages")] = False,
) -> None:
    """Load a benchmark folder as the current version; loading the same content twice is a no-op."""
    from app.benchmarks.loader import BenchmarkLoadError
    from app.benchmarks.service import load_benchmark
    from app.db import session_scope

    try:
        with session_scope() as session:
            benchmark, created = load_benchmark(
                session, path, name or get_settings().benchmark_name, is_demo=demo
            )
            counts = {stem: info["items"] for stem, info in benchmark.files.items()}
            version = benchmark.version
    except BenchmarkLoadError as error:
        raise _fail(str(error)) from None
    state = "loaded" if created else "already loaded (made current)"
    typer.echo(f"benchmark {state}: version {version[:12]}, items {counts}")


@reference_app.command("load")
def reference_load(
    path: Annotated[Path | None, typer.Argument(help="CSV (default: the paper's results)")] = None,
) -> None:
    """Load reference rows (model, model_kind, protocol, task_type, accuracy_percent, source)."""
    from app.db import session_scope
    from app.leaderboard.reference import PAPER_RESULTS, ReferenceFileError, load_reference_rows

    try:
        with session_scope() as session:
            count = load_reference_rows(session, path or PAPER_RESULTS)
    except (ReferenceFileError, OSError) as error:
        raise _fail(str(error)) from None
    typer.echo(f"reference rows loaded for {count} models")


@users_app.command("create")
def users_create(
    email: str,
    token: Annotated[bool, typer.Option(help="Print a new API token for scripts")] = False,
    token_name: Annotated[str, typer.Option(help="Name shown on the account page")] = "cli",  # noqa: S107
) -> None:
    """Create an account (or reuse it with --token) and optionally print a new API token."""
    from app.accounts.service import create_user, get_user_by_email, issue_token
    from app.db import session_scope
    from app.errors import Conflict, DomainError

    try:
        with session_scope() as session:
            try:
                user = create_user(session, email)
                typer.echo(f"created account {user.email}", err=True)
            except Conflict:
                if not token:
                    raise
                user = get_user_by_email(session, email)
                typer.echo(f"account {user.email} exists; issuing a new token", err=True)
            secret = issue_token(session, user, token_name).secret if token else None
    except DomainError as error:
        raise _fail(error.message) from None
    if secret:
        typer.echo(secret)


@demo_app.command("seed")
def demo_seed() -> None:
    """Load the demo benchmark and reference rows, and submit the demo baselines for scoring."""
    from app.demo_seed import seed_demo

    for line in seed_demo(get_settings()):
        typer.echo(line)


@submissions_app.command("requeue")
def submissions_requeue() -> None:
    """Send every queued submission to the workers again, e.g. after the broker was down."""
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Submission
    from app.submissions.queue import enqueue_scoring

    with session_scope() as session:
        ids = list(session.scalars(select(Submission.id).where(Submission.status == "queued")))
    sent = sum(enqueue_scoring(key) for key in ids)
    typer.echo(f"requeued {sent} of {len(ids)} queued submissions")


def _worker_command(concurrency: int) -> list[str]:
    settings = get_settings()
    pool = "solo" if settings.broker_url.startswith("sqla+") else "prefork"
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker"]
    command += ["--loglevel", "INFO", "--pool", pool, "--queues", settings.task_queue]
    if pool != "solo":
        command += ["--concurrency", str(concurrency)]
    return command


@app.command("worker")
def worker(concurrency: Annotated[int, typer.Option(help="Worker processes")] = 2) -> None:
    """Run a Celery worker in the foreground."""
    os.execv(sys.executable, _worker_command(concurrency))  # noqa: S606


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    with_worker: Annotated[bool, typer.Option(help="Also start a Celery worker")] = False,
) -> None:
    """Serve the web app and API with uvicorn, optionally with a worker process beside it."""
    import uvicorn

    worker_process = None
    if with_worker:
        worker_process = subprocess.Popen(_worker_command(1))  # noqa: S603
    typer.secho(f"RealUnify leaderboard on http://{host}:{port}/", fg=typer.colors.GREEN)
    try:
        uvicorn.run("app.main:app", host=host, port=port, log_level="info")
    finally:
        if worker_process is not None:
            worker_process.send_signal(signal.SIGTERM)
            worker_process.wait(timeout=30)


@app.command("run")
def run(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Migrate, seed the demo, then serve with a worker: the one command for a fresh machine."""
    db_upgrade()
    demo_seed()
    serve(host=host, port=port, with_worker=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
