"""The ``realunify-board`` command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
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


@users_app.command("password")
def users_password(email: str) -> None:
    """Set the web sign-in password of an account, e.g. one made for scripts."""
    from app.accounts.service import get_user_by_email, set_password
    from app.db import session_scope
    from app.errors import DomainError

    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope() as session:
            set_password(session, get_user_by_email(session, email), password)
    except DomainError as error:
        raise _fail(error.message) from None
    typer.echo(f"password set for {email}")


@demo_app.command("seed")
def demo_seed() -> None:
    """Load the demo benchmark and reference rows, and submit the demo baselines for scoring."""
    from app.demo_seed import seed_demo

    for line in seed_demo(get_settings()):
        typer.echo(line)


@app.command("rescore")
def rescore() -> None:
    """Score every scored submission again into a new version, in the background.

    The leaderboard keeps showing the current version until every submission is rescored.
    """
    from app.db import session_scope
    from app.scoring.runs import finish_if_complete, start_rescore
    from app.submissions.queue import enqueue_rescore

    with session_scope() as session:
        run, submissions = start_rescore(session, get_settings())
        run_id, ids = run.id, [submission.id for submission in submissions]
        if not ids:
            finish_if_complete(session, run_id)
    sent = sum(enqueue_rescore(key, run_id) for key in ids)
    typer.echo(f"scoring run {run_id}: queued {sent} of {len(ids)} submissions")


@submissions_app.command("rejudge")
def submissions_rejudge(
    ids: Annotated[list[str] | None, typer.Argument(help="Submission ids")] = None,
    judge_errors: Annotated[
        bool, typer.Option("--judge-errors", help="Every submission that has judge errors")
    ] = False,
) -> None:
    """Score submissions again, e.g. after a judge outage, reusing judge replies in the ledger."""
    import uuid

    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Submission
    from app.submissions.queue import enqueue_scoring

    if not ids and not judge_errors:
        raise _fail("give submission ids, or --judge-errors for all with judge errors")
    with session_scope() as session:
        query = select(Submission).where(Submission.status.in_(("scored", "failed")))
        if judge_errors:
            query = query.where(Submission.judge_error_count > 0)
        if ids:
            try:
                keys = [uuid.UUID(value) for value in ids]
            except ValueError:
                raise _fail(
                    "submission ids must be UUIDs, as shown on the submission page"
                ) from None
            query = query.where(Submission.id.in_(keys))
        submissions = list(session.scalars(query))
        for submission in submissions:
            submission.status = "queued"
        chosen = [submission.id for submission in submissions]
    sent = sum(enqueue_scoring(key) for key in chosen)
    typer.echo(f"queued {sent} of {len(chosen)} submissions for scoring")


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


@app.command("submit")
def submit_command(
    result_file: Annotated[Path, typer.Argument(help="UEG_/GEU_ result file (.json or .jsonl)")],
    model_name: Annotated[str, typer.Option(help="The model's public name")],
    model_kind: Annotated[str, typer.Option(help="unified, understanding specialist, ...")] = (
        "unified"
    ),
    protocol: Annotated[
        str | None, typer.Option(help="direct or stepwise (default: from the file name)")
    ] = None,
    axis: Annotated[
        str | None, typer.Option(help="UEG or GEU (default: from the file name)")
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option(
            help="UEG: a .zip or a folder of images (default: the files the result names)"
        ),
    ] = None,
    link: Annotated[str | None, typer.Option(help="http(s) link to the model or paper")] = None,
    allow_missing: Annotated[bool, typer.Option(help="Score missing items as wrong")] = False,
    server: Annotated[
        str | None, typer.Option(help="Service URL (default: REALUNIFY_BASE_URL)")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="REALUNIFY_TOKEN", help="API token (or REALUNIFY_TOKEN)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only validate; store nothing")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the scores and print them")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the scores")] = 3600.0,
) -> None:
    """Upload a result file (and UEG images) with a progress bar, then print the scores."""
    from app.client_cli import SubmitError, guess_axis_protocol, submit

    if not result_file.is_file():
        raise _fail(f"{result_file}: no such file")
    if not token:
        raise _fail("no API token: pass --token or set REALUNIFY_TOKEN")
    guessed_axis, guessed_protocol = guess_axis_protocol(result_file)
    axis = axis or guessed_axis
    protocol = protocol or guessed_protocol
    if axis is None or protocol is None:
        raise _fail(
            f"cannot tell the axis and protocol from {result_file.name}; pass --axis and --protocol"
        )
    fields = {
        "model_name": model_name,
        "model_kind": model_kind,
        "protocol": protocol,
        "axis": axis,
        "allow_missing": "true" if allow_missing else "false",
    }
    if link:
        fields["link"] = link
    try:
        code = submit(
            server or get_settings().base_url,
            token,
            result_file,
            fields,
            images,
            dry_run=dry_run,
            wait=wait,
            timeout_seconds=timeout,
        )
    except SubmitError as error:
        raise _fail(str(error)) from None
    raise typer.Exit(code=code)


def _worker_command(concurrency: int) -> list[str]:
    settings = get_settings()
    pool = "solo" if settings.broker_url.startswith("sqla+") else "prefork"
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker"]
    command += ["--loglevel", "INFO", "--pool", pool, "--queues", settings.task_queue]
    command += ["--concurrency", str(1 if pool == "solo" else concurrency)]
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

    settings = get_settings()
    _check_port_free(host, port)
    commands: list[tuple[str, list[str]]] = []
    if with_worker and not settings.judge_base_url:
        # No judge configured: start the demo judge, which reads shapes from the pixels. Another
        # program on its port would silently become the judge, so that is an error.
        _check_port_free("127.0.0.1", settings.judge_port, "REALUNIFY_JUDGE_PORT")
        judge = [sys.executable, "-m", "app.judging.standin", "--host", "127.0.0.1"]
        commands.append(("demo judge", [*judge, "--port", str(settings.judge_port)]))
        typer.echo(f"demo judge on {settings.judge_url}")
    if with_worker:
        commands.append(("worker", _worker_command(1)))
    supervisor = _Supervisor(commands)
    supervisor.start()
    typer.secho(f"RealUnify leaderboard on http://{host}:{port}/", fg=typer.colors.GREEN)
    try:
        uvicorn.run("app.main:app", host=host, port=port, log_level="info")
    finally:
        supervisor.stop()


class _Supervisor:
    """Keep the helper processes of ``serve`` running: one that exits is logged and restarted."""

    def __init__(self, commands: list[tuple[str, list[str]]]) -> None:
        self.commands = commands
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def start(self) -> None:
        for name, command in self.commands:
            self.processes[name] = subprocess.Popen(command)  # noqa: S603
        if self.commands:
            self.thread.start()

    def _watch(self) -> None:
        from app.logs import get_logger

        log = get_logger("app.cli")
        while not self.stopping.wait(2.0):
            for name, command in self.commands:
                code = self.processes[name].poll()
                if code is None or self.stopping.is_set():
                    continue
                log.error("helper.exited", helper=name, exit_code=code, action="restarting")
                self.processes[name] = subprocess.Popen(command)  # noqa: S603

    def stop(self) -> None:
        self.stopping.set()
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _check_port_free(host: str, port: int, setting: str = "--port") -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn does, so connections still closing on the port do not count as a listener.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            hint = "make run PORT=8080, or --port" if setting == "--port" else f"set {setting}"
            raise _fail(
                f"cannot listen on {host}:{port} ({error.strerror}); stop the program using it or "
                f"choose another port ({hint})"
            ) from None


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
