"""Compare the leaderboard page under load with a static HTML file of the same size.

The script makes a fresh SQLite data folder, loads the demo benchmark and the reference rows of the
RealUnify paper with ``realunify-board``, and stores scored GEU submissions for 500 models
in-process (direct protocol by default, one row per model; ``--protocols both`` adds a stepwise row
per model). Each model answers the demo ``GEU_direct`` items, and a seeded random generator makes
some answers wrong, so the scores differ. It then starts one ``uvicorn app.main:app`` process on
127.0.0.1 with default settings, fetches the page once to warm it up (the first load computes the
intervals and fills the caches) and writes the exact bytes to
``static/_bench/leaderboard-copy.html``, so the same server also serves a static file of the same
size. wrk loads the page and the static copy in turn (page, static, page, static, ...) with the
same threads, connections and duration. The goal: the page answers at least half as many requests
per second as the static file.

Run from the repository root:

    .venv/bin/python bench/leaderboard_load.py [--markdown bench/results-leaderboard.md]

Needs wrk (``apt-get install wrk``). Linux only, because it reads /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from common import ROOT, VENV_BIN, free_port, run_cli, wait_for_server

DEMO = ROOT / "demo" / "realunify-demo"
STATIC_DIR = ROOT / "static" / "_bench"
STATIC_NAME = "leaderboard-copy.html"
STATIC_PATH = f"/static/_bench/{STATIC_NAME}"
WRK = Path("/usr/bin/wrk")
GOAL_RATIO = 0.5
LETTERS = "ABCD"
WARMUP_TIMEOUT = httpx.Timeout(600.0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500, help="models to create (default 500)")
    parser.add_argument(
        "--protocols",
        choices=("direct", "both"),
        default="direct",
        help="direct: one GEU direct row per model; both: a stepwise row as well",
    )
    parser.add_argument(
        "--seed", type=int, default=2026, help="seed of the generator that picks wrong answers"
    )
    parser.add_argument(
        "--path", default="/", help="page to load, with its query string (default /)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run (default 15)")
    parser.add_argument("--rounds", type=int, default=2, help="page-then-static rounds (default 2)")
    parser.add_argument("--port", type=int, default=0, help="server port (0: pick a free one)")
    parser.add_argument("--markdown", type=Path, help="write a Markdown section to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    for name in ("models", "threads", "connections", "duration", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads (wrk needs one per thread)")
    if not args.path.startswith("/"):
        parser.error("--path must start with /")
    return args


def model_answers(items: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Return the demo items with a `response`: the true letter, or a wrong one at the model's rate.

    The rate is drawn per model from 0 to 0.75.
    """
    wrong_rate = rng.uniform(0.0, 0.75)
    answered = []
    for item in items:
        letter = item["answer"]
        if rng.random() < wrong_rate:
            letter = rng.choice([other for other in LETTERS if other != item["answer"]])
        answered.append({**item, "response": letter})
    return answered


def seed_models(count: int, protocols: str, seed: int) -> tuple[int, float]:
    """Store `count` models with scored GEU submissions; return (submissions, seconds).

    REALUNIFY_DATA_DIR must be set before this runs: the app reads its settings once, on the
    first import that needs them.
    """
    import logging

    import structlog

    from app.accounts.service import create_user
    from app.benchmarks.service import get_current_benchmark
    from app.config import get_settings
    from app.db import session_scope
    from app.models import utc_now
    from app.scoring.service import score_submission
    from app.submissions.service import (
        SubmissionForm,
        check_form,
        create_submission,
        validate_for_benchmark,
    )

    # One info line per stored model and submission would bury the script's own output.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    settings = get_settings()
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
    stems = {"direct": "GEU_direct"}
    if protocols == "both":
        stems["stepwise"] = "GEU_step"
    demo_items = {
        protocol: json.loads((DEMO / f"{stem}.json").read_text("utf-8"))
        for protocol, stem in stems.items()
    }
    started = time.monotonic()
    stored = 0
    batch = 50
    with session_scope() as session:
        user_id = create_user(session, "bench@example.org").id
    for first in range(0, count, batch):
        with session_scope() as session:
            from app.models import User

            user = session.get(User, user_id)
            assert user is not None
            benchmark = get_current_benchmark(session, settings.benchmark_name)
            for number in range(first, min(first + batch, count)):
                for protocol, stem in stems.items():
                    items = model_answers(demo_items[protocol], rng)
                    if protocol == "stepwise":
                        for item in items:
                            item["edit_image"] = f"edits/{item['index']}.png"
                    data = json.dumps(items).encode("utf-8")
                    form = check_form(
                        SubmissionForm(f"Bench model {number:03d}", "unified", protocol, "GEU")
                    )
                    upload = validate_for_benchmark(
                        session, benchmark, form, data, f"{stem}.json", 50
                    )
                    submission = create_submission(session, user, benchmark, form, upload, data)
                    score_submission(session, submission.id, settings)
                    submission.status = "scored"
                    submission.finished_at = utc_now()
                    session.flush()
                    stored += 1
        print(f"  stored {min(first + batch, count)} of {count} models", flush=True)
    return stored, time.monotonic() - started


@dataclass
class WrkRun:
    target: str  # "page" or "static"
    requests: int
    seconds: float
    rate: float
    latency_avg: str
    latency_p99: str
    non_2xx_3xx: int
    socket_errors: str
    output: str


def parse_seconds(text: str) -> float:
    """wrk prints durations as 15.01s, 1.2m or 900.00ms."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"unknown wrk duration {text!r}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
    return float(match.group(1)) * scale


def run_wrk(url: str, target: str, args: argparse.Namespace) -> WrkRun:
    command = [
        str(WRK),
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        url,
    ]
    completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        command, capture_output=True, text=True, check=False
    )
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise SystemExit(f"wrk failed ({completed.returncode}):\n{output}")

    totals = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    p99 = re.search(r"99%\s+(\S+)", output)
    if totals is None or rate is None or latency is None or p99 is None:
        raise SystemExit(f"could not read wrk's output:\n{output}")

    # wrk prints these two lines only when there was such a response or error.
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.+)", output)
    return WrkRun(
        target=target,
        requests=int(totals.group(1)),
        seconds=parse_seconds(totals.group(2)),
        rate=float(rate.group(1)),
        latency_avg=latency.group(1),
        latency_p99=p99.group(1),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors.group(1).strip() if errors else "none",
        output=output,
    )


def access_log_statuses(log_text: str) -> dict[tuple[str, str], int]:
    """Count uvicorn access log lines by (path, status code)."""
    counts: dict[tuple[str, str], int] = {}
    for match in re.finditer(r'"GET (\S+) HTTP/1\.1" (\d{3})', log_text):
        key = (match.group(1), match.group(2))
        counts[key] = counts.get(key, 0) + 1
    return counts


def machine_description() -> list[str]:
    model = "unknown (lscpu not found)"
    lscpu = shutil.which("lscpu")
    if lscpu is not None:
        output = subprocess.run(  # noqa: S603 - a fixed command
            [lscpu], capture_output=True, text=True, check=False
        ).stdout
        model = "unknown (no Model name line in lscpu output)"
        for line in output.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    lines = [
        f"CPU: {model}",
        f"CPUs available to this process (as nproc counts): {len(os.sched_getaffinity(0))}",
    ]
    try:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        total = int(fields["MemTotal"].split()[0]) / 1024**2
        available = int(fields["MemAvailable"].split()[0]) / 1024**2
        lines.append(f"Memory: {total:.1f} GiB total, {available:.1f} GiB available")
    except (OSError, KeyError, ValueError, IndexError):
        lines.append("Memory: unknown (/proc/meminfo unreadable)")
    lines.append(f"OS: {platform.platform()}")
    lines.append(f"Python {platform.python_version()}, {package_versions()}")
    return lines


def package_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("uvicorn", "uvloop", "httptools", "starlette", "fastapi"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def wrk_version() -> str:
    completed = subprocess.run(  # noqa: S603 - a fixed command
        [str(WRK), "-v"], capture_output=True, text=True, check=False
    )
    first = (completed.stdout + completed.stderr).strip().splitlines()
    return first[0] if first else "wrk (version unknown)"


def code_state() -> str:
    """Describe the commit under test and count the changed paths that the server runs."""
    git = shutil.which("git")
    if git is None:
        return "unknown (git not found)"
    head = subprocess.run(  # noqa: S603 - a fixed command
        [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    changed = subprocess.run(  # noqa: S603 - a fixed command
        [git, "status", "--porcelain", "--", "app", "templates", "migrations"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    commit = head.stdout.strip()
    if not changed:
        return f"commit {commit}, no uncommitted changes under app/, templates/ or migrations/"
    return (
        f"commit {commit} plus {len(changed)} uncommitted or new paths under app/, "
        "templates/ and migrations/"
    )


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main() -> int:
    args = parse_args()
    if not WRK.exists():
        raise SystemExit(f"{WRK} not found; install wrk (apt-get install wrk) and run again")
    if STATIC_DIR.exists():
        raise SystemExit(
            f"{STATIC_DIR} already exists, perhaps left by an interrupted run; "
            "remove it and run again"
        )
    signal.signal(signal.SIGTERM, stop_on_sigterm)

    workspace = Path(tempfile.mkdtemp(prefix="realunify-load-"))
    data_dir = workspace / "data"
    data_dir.mkdir()
    env = {
        **os.environ,
        "REALUNIFY_DATA_DIR": str(data_dir),
        # Empty URLs select the SQLite database and broker under the data folder.
        "REALUNIFY_DATABASE_URL": "",
        "REALUNIFY_BROKER_URL": "",
        "REALUNIFY_ENVIRONMENT": "development",
    }
    # Set before any app module is imported: the settings are read once.
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))

    server: subprocess.Popen[bytes] | None = None
    log_path = workspace / "uvicorn.log"
    log_file = log_path.open("wb")
    try:
        print(f"workspace: {workspace}")
        run_cli(env, "db", "upgrade")
        run_cli(env, "benchmark", "load", str(DEMO), "--demo")
        run_cli(env, "reference", "load")
        print(f"seeding {args.models} models ({args.protocols})", flush=True)
        submissions, seed_seconds = seed_models(args.models, args.protocols, args.seed)
        print(f"stored {submissions} scored submissions in {seed_seconds:.1f} s")

        port = args.port or free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            [str(VENV_BIN / "uvicorn"), "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        wait_for_server(base, server)
        print(f"server pid {server.pid} on {base}")

        page_url = base + args.path
        static_url = base + STATIC_PATH
        with httpx.Client(timeout=WARMUP_TIMEOUT) as client:
            started = time.monotonic()
            first = client.get(page_url)
            warmup_seconds = time.monotonic() - started
            if first.status_code != 200:
                raise SystemExit(f"GET {args.path} -> {first.status_code}: {first.text[:400]}")
            page = first.content
            started = time.monotonic()
            second = client.get(page_url)
            cached_ms = (time.monotonic() - started) * 1000
            if second.content != page:
                raise SystemExit("the page changed between two loads; it would not be comparable")
            STATIC_DIR.mkdir(parents=True)
            (STATIC_DIR / STATIC_NAME).write_bytes(page)
            copy = client.get(static_url)
            if copy.status_code != 200 or copy.content != page:
                raise SystemExit(f"GET {STATIC_PATH} -> {copy.status_code}, not the page's bytes")
        table_rows = page.count(b"<tr class=")
        print(f"warm-up GET {args.path}: {warmup_seconds:.2f} s; next load {cached_ms:.1f} ms")
        print(f"page: {len(page)} bytes, {table_rows} table rows; static copy at {STATIC_PATH}")

        runs: list[WrkRun] = []
        for round_number in range(args.rounds):
            for target, url in (("page", page_url), ("static", static_url)):
                run = run_wrk(url, target, args)
                runs.append(run)
                print(
                    f"round {round_number + 1} {target}: {run.rate:.1f} requests/s, "
                    f"{run.requests} requests in {run.seconds:.2f} s, latency avg "
                    f"{run.latency_avg}, p99 {run.latency_p99}, non-2xx/3xx "
                    f"{run.non_2xx_3xx}, socket errors: {run.socket_errors}",
                    flush=True,
                )
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log_file.close()
        shutil.rmtree(STATIC_DIR, ignore_errors=True)
        log_text = log_path.read_text("utf-8", errors="replace") if log_path.exists() else ""
        if args.keep:
            print(f"kept {workspace}")
        else:
            shutil.rmtree(workspace, ignore_errors=True)

    statuses = access_log_statuses(log_text)
    report = summarise(args, runs, statuses, page_size=len(page), table_rows=table_rows)
    report_lines = section(
        args,
        report,
        submissions=submissions,
        seed_seconds=seed_seconds,
        warmup_seconds=warmup_seconds,
        cached_ms=cached_ms,
    )
    print()
    print("\n".join(report_lines))
    if args.markdown:
        args.markdown.write_text("\n".join(report_lines), encoding="utf-8")
        print(f"wrote {args.markdown}")
    return 0 if report.all_ok else 1


@dataclass
class Summary:
    runs: list[WrkRun]
    page_rate: float
    static_rate: float
    ratio: float
    page_size: int
    table_rows: int
    logged: dict[tuple[str, str], int]
    all_ok: bool
    verdict: str


def summarise(
    args: argparse.Namespace,
    runs: list[WrkRun],
    statuses: dict[tuple[str, str], int],
    *,
    page_size: int,
    table_rows: int,
) -> Summary:
    page_runs = [run for run in runs if run.target == "page"]
    static_runs = [run for run in runs if run.target == "static"]
    # The rate of each kind is all its requests divided by all its seconds.
    page_rate = sum(run.requests for run in page_runs) / sum(run.seconds for run in page_runs)
    static_rate = sum(run.requests for run in static_runs) / sum(run.seconds for run in static_runs)
    ratio = page_rate / static_rate
    not_ok = sum(count for (_, status), count in statuses.items() if status != "200")
    wrk_problems = sum(run.non_2xx_3xx for run in runs) + sum(
        run.socket_errors != "none" for run in runs
    )
    all_ok = not_ok == 0 and wrk_problems == 0
    verdict = "met" if ratio >= GOAL_RATIO else "missed"
    return Summary(
        runs, page_rate, static_rate, ratio, page_size, table_rows, statuses, all_ok, verdict
    )


def section(
    args: argparse.Namespace,
    summary: Summary,
    *,
    submissions: int,
    seed_seconds: float,
    warmup_seconds: float,
    cached_ms: float,
) -> list[str]:
    command = shlex.join([".venv/bin/python", "bench/leaderboard_load.py", *sys.argv[1:]])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows_per_model = (
        "one GEU direct row" if args.protocols == "direct" else "GEU direct and stepwise rows"
    )
    wrk_settings = f"-t{args.threads} -c{args.connections} -d{args.duration}s --latency"
    one_load, load_avg_5, _ = os.getloadavg()
    logged_lines = [
        f"{path} -> {status}: {count}" for (path, status), count in sorted(summary.logged.items())
    ]
    lines = [
        "## Leaderboard page under load",
        "",
        f"Command: `{command}`, run on {date}. The data folder is a fresh SQLite one with the "
        f"demo benchmark, the paper's reference rows and {args.models} models with "
        f"{rows_per_model} each ({submissions} scored submissions stored in-process in "
        f"{seed_seconds:.1f} s; the answers are the demo GEU items, wrong at a per-model rate "
        f"drawn with seed {args.seed}). One `uvicorn app.main:app` process with default settings "
        f"serves both URLs on 127.0.0.1. The page `{args.path}` was loaded once to warm up "
        f"({warmup_seconds:.2f} s, intervals and caches; the next load took {cached_ms:.1f} ms), "
        f"and its bytes were saved as `{STATIC_PATH}` for the static run (the folder is removed "
        "at the end).",
        "",
        f"- Code: {code_state()}",
        *[f"- {line}" for line in machine_description()],
        f"- Load tool: {wrk_version()}, `wrk {wrk_settings} URL` on the same machine, "
        f"{args.rounds} round{'s' if args.rounds > 1 else ''} of page then static",
        f"- Load average after the runs: {one_load:.2f} (1 min), {load_avg_5:.2f} (5 min)",
        f"- Page size: {summary.page_size} bytes ({summary.page_size / 1024:.1f} KiB), "
        f"{summary.table_rows} table rows"
        + (" (the default page shows the first 100 board rows)" if args.path == "/" else ""),
        "",
        "| run | URL | requests | requests/s | latency avg | latency p99 | non-2xx/3xx "
        "| socket errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, run in enumerate(summary.runs, start=1):
        url = args.path if run.target == "page" else STATIC_PATH
        lines.append(
            f"| {number} {run.target} | `{url}` | {run.requests} | {run.rate:.1f} | "
            f"{run.latency_avg} | {run.latency_p99} | {run.non_2xx_3xx} | {run.socket_errors} |"
        )
    lines += [
        "",
        f"- Page: {summary.page_rate:.1f} requests/s; static file: {summary.static_rate:.1f} "
        "requests/s (all requests over all seconds of each kind)",
        f"- Ratio page / static: {summary.ratio:.3f} (goal: at least {GOAL_RATIO}): "
        f"{summary.verdict}",
        "- Every response 200: "
        + ("yes" if summary.all_ok else "NO")
        + " (wrk's non-2xx/3xx and socket error counts, and the server's access log: "
        + "; ".join(logged_lines)
        + ")",
        "",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
