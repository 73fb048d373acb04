"""Measure judge throughput: the async JudgeClient against 16 blocking worker threads.

The script starts the stand-in judge (``python -m app.judging.standin``) on a free port of
127.0.0.1, with a 0.3 s delay per reply and at most 64 requests in flight. Then it judges 600
items with 3 questions each (1,800 requests) on the demo reference pictures, cycled:

(a) with JudgeClient at concurrency 64, and
(b) with a ThreadPoolExecutor of 16 threads, each with its own blocking httpx.Client.

It prints both wall times, the ideal time (requests x delay / 64), the ratio of (a) to the ideal
and the speed-up of (a) over (b), and can write them as a Markdown section.

    .venv/bin/python bench/judge_throughput.py [--markdown bench/results-judge.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from common import free_port  # noqa: E402

from app.judging.client import (  # noqa: E402
    JudgeClient,
    JudgeConfig,
    JudgeRequest,
    build_messages,
    image_data_url,
)
from app.judging.standin import MODEL_NAME  # noqa: E402
from app.scoring.yes_no import parse_yes_no  # noqa: E402

BASELINES = PROJECT_ROOT / "demo" / "baselines"
ITEMS = 600
QUESTIONS_PER_ITEM = 3
DELAY_SECONDS = 0.3
SERVER_MAX_CONCURRENT = 64
CLIENT_CONCURRENCY = 64
BLOCKING_WORKERS = 16
RATIO_GOAL = 1.1
SPEEDUP_GOAL = 3.0


@dataclass(frozen=True)
class Case:
    request: JudgeRequest
    expected: bool


@dataclass(frozen=True)
class RunResult:
    seconds: float
    correct: int
    wrong: int
    errors: int


def build_cases() -> list[Case]:
    """Return ITEMS x QUESTIONS_PER_ITEM requests on the reference pictures, cycled.

    An item with fewer than three questions repeats its questions in order.
    """
    references = json.loads((BASELINES / "UEG_direct.reference.json").read_text("utf-8"))
    images = {
        item["generated_image"]: (BASELINES / item["generated_image"]).read_bytes()
        for item in references
    }
    cases = []
    for number in range(ITEMS):
        item = references[number % len(references)]
        questions = item["question_list"]
        for position in range(QUESTIONS_PER_ITEM):
            entry = questions[position % len(questions)]
            request = JudgeRequest(
                key=f"{number}-{position}",
                image=images[item["generated_image"]],
                media_type="image/png",
                question=entry["question"],
            )
            cases.append(Case(request, entry["answer"] == "yes"))
    return cases


def start_standin(port: int) -> tuple[subprocess.Popen[bytes], list[str]]:
    command = [
        sys.executable,
        "-m",
        "app.judging.standin",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--delay",
        str(DELAY_SECONDS),
        "--max-concurrent",
        str(SERVER_MAX_CONCURRENT),
    ]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT)  # noqa: S603 (fixed arguments)
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return process, command
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the stand-in judge did not start on port {port} within 20 s")
        time.sleep(0.1)


def count(outcomes: list[bool | None], cases: list[Case], seconds: float) -> RunResult:
    correct = sum(answer is case.expected for answer, case in zip(outcomes, cases, strict=True))
    errors = sum(answer is None for answer in outcomes)
    return RunResult(seconds, correct, len(cases) - correct - errors, errors)


def run_async_client(base_url: str, cases: list[Case]) -> RunResult:
    config = JudgeConfig(base_url=base_url, model=MODEL_NAME, concurrency=CLIENT_CONCURRENCY)

    async def judge() -> list[bool | None]:
        async with JudgeClient(config) as client:
            results = await client.judge_many([case.request for case in cases])
        return [result.answer for result in results]

    started = time.perf_counter()
    outcomes = asyncio.run(judge())
    return count(outcomes, cases, time.perf_counter() - started)


def run_blocking_workers(base_url: str, cases: list[Case]) -> RunResult:
    url = f"{base_url}/chat/completions"
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def judge(case: Case) -> bool | None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=60)
            with lock:
                clients.append(client)
        request = case.request
        payload = {
            "model": MODEL_NAME,
            "messages": build_messages(
                request.question, image_data_url(request.image, request.media_type)
            ),
            "temperature": 0,
        }
        response = client.post(url, json=payload)
        if response.status_code != 200:
            return None
        return parse_yes_no(response.json()["choices"][0]["message"]["content"])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=BLOCKING_WORKERS) as pool:
        outcomes = list(pool.map(judge, cases))
    seconds = time.perf_counter() - started
    for client in clients:
        client.close()
    return count(outcomes, cases, seconds)


def machine_description() -> list[str]:
    lines = []
    try:
        lscpu_path = shutil.which("lscpu")
        if lscpu_path is None:
            raise OSError("lscpu not found on PATH")
        lscpu = subprocess.run(  # noqa: S603 (a fixed command)
            [lscpu_path], capture_output=True, text=True, check=True
        ).stdout
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in lscpu.splitlines()
                if line.startswith("Model name")
            ),
            "unknown",
        )
        lines.append(f"CPU: {model}")
    except (OSError, subprocess.CalledProcessError):
        lines.append("CPU: unknown (lscpu failed)")
    lines.append(f"CPUs (nproc): {os.cpu_count()}")
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        fields = {line.split(":")[0]: line.split(":")[1].strip() for line in meminfo}
        total_gib = int(fields["MemTotal"].split()[0]) / 1024**2
        available_gib = int(fields["MemAvailable"].split()[0]) / 1024**2
        lines.append(f"Memory: {total_gib:.1f} GiB total, {available_gib:.1f} GiB available")
    except (OSError, KeyError, ValueError, IndexError):
        lines.append("Memory: unknown")
    lines.append(f"Python {platform.python_version()}, httpx {httpx.__version__}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="write the results as Markdown to this file")
    args = parser.parse_args()

    cases = build_cases()
    port = free_port()
    process, command = start_standin(port)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        # Warm-up: the stand-in analyses each distinct picture once and caches the result.
        run_async_client(base_url, cases[: 30 * QUESTIONS_PER_ITEM])
        httpx.post(f"http://127.0.0.1:{port}/control", json={"reset_stats": True})
        async_result = run_async_client(base_url, cases)
        async_stats = httpx.get(f"http://127.0.0.1:{port}/stats").json()
        httpx.post(f"http://127.0.0.1:{port}/control", json={"reset_stats": True})
        blocking_result = run_blocking_workers(base_url, cases)
        blocking_stats = httpx.get(f"http://127.0.0.1:{port}/stats").json()
    finally:
        process.terminate()
        process.wait(timeout=10)

    requests = len(cases)
    ideal = requests * DELAY_SECONDS / CLIENT_CONCURRENCY
    ratio = async_result.seconds / ideal
    speedup = blocking_result.seconds / async_result.seconds
    rows = [
        ("(a) JudgeClient, concurrency 64", async_result, async_stats),
        (f"(b) {BLOCKING_WORKERS} blocking threads", blocking_result, blocking_stats),
    ]
    report = [
        "## Judge client throughput",
        "",
        f"Command: `{shlex.join(['.venv/bin/python', 'bench/judge_throughput.py', *sys.argv[1:]])}`"
        ", run on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. The script starts the stand-in judge as "
        f"`{shlex.join(['python', *command[1:]])}` and judges {ITEMS} items x "
        f"{QUESTIONS_PER_ITEM} questions = {requests} requests on the demo reference pictures, "
        "cycled, after a warm-up of 90 requests. Client and stand-in run on the same machine.",
        "",
        *[f"- {line}" for line in machine_description()],
        "",
        "| run | wall time (s) | correct | wrong | errors | max in flight at the stand-in "
        "| rejected over limit |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {name} | {result.seconds:.2f} | {result.correct} | {result.wrong} | "
            f"{result.errors} | {stats['max_concurrent_observed']} | "
            f"{stats['rejected_over_limit']} |"
            for name, result, stats in rows
        ],
        "",
        f"- Ideal for (a): {requests} x {DELAY_SECONDS} s / {CLIENT_CONCURRENCY} = {ideal:.2f} s",
        f"- Lower bound for (a): each of the {CLIENT_CONCURRENCY} slots sends its requests one "
        f"after another, so some send {-(-requests // CLIENT_CONCURRENCY)} and (a) needs at least "
        f"{-(-requests // CLIENT_CONCURRENCY) * DELAY_SECONDS:.2f} s, a ratio of "
        f"{-(-requests // CLIENT_CONCURRENCY) * DELAY_SECONDS / ideal:.3f}",
        f"- Ratio of (a) to ideal: {ratio:.3f} (goal: at most {RATIO_GOAL}): "
        f"{'met' if ratio <= RATIO_GOAL else 'missed'}",
        f"- Speed-up of (a) over (b): {speedup:.2f} x (goal: at least {SPEEDUP_GOAL}): "
        f"{'met' if speedup >= SPEEDUP_GOAL else 'missed'}",
        "",
    ]
    text = "\n".join(report)
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
