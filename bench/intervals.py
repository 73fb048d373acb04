"""Time the stratified paired bootstrap of app.stats.bootstrap at leaderboard scale.

The script builds 200 entries x 1,000 items (10 categories of 100, 6 UEG and 4 GEU) of random
0/1 outcomes, with each entry's accuracy drawn from 0.2 to 0.8, and 100 pairs (entries 2k and
2k + 1). It times ``bootstrap_scores`` with 10,000 resamples: one warm-up call, then the median
of the timed runs. A last run under tracemalloc measures the peak of memory that numpy and
Python allocate during the call. The goal is a median under 2 s.

    .venv/bin/python bench/intervals.py [--runs 5] [--markdown bench/results-intervals.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from app.stats.bootstrap import Layout, bootstrap_scores  # noqa: E402

ENTRIES = 200
CATEGORIES = 10
UEG_CATEGORY_COUNT = 6
ITEMS_PER_CATEGORY = 100
RESAMPLES = 10_000
PAIRS = [(2 * k, 2 * k + 1) for k in range(ENTRIES // 2)]
GOAL_SECONDS = 2.0


def build_inputs() -> tuple[np.ndarray, Layout]:
    rng = np.random.default_rng(2026)
    accuracies = rng.uniform(0.2, 0.8, size=(ENTRIES, 1))
    outcomes = (rng.random((ENTRIES, CATEGORIES * ITEMS_PER_CATEGORY)) < accuracies).astype(float)
    names = tuple(f"category_{k}" for k in range(CATEGORIES))
    layout = Layout(
        categories=names,
        axis_of={name: "UEG" if k < UEG_CATEGORY_COUNT else "GEU" for k, name in enumerate(names)},
        item_category=np.repeat(np.arange(CATEGORIES), ITEMS_PER_CATEGORY),
    )
    return outcomes, layout


def time_runs(outcomes: np.ndarray, layout: Layout, runs: int) -> list[float]:
    bootstrap_scores(outcomes, layout, resamples=RESAMPLES, pairs=PAIRS)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        bootstrap_scores(outcomes, layout, resamples=RESAMPLES, pairs=PAIRS)
        seconds.append(time.perf_counter() - start)
    return seconds


def peak_memory_mib(outcomes: np.ndarray, layout: Layout) -> float:
    tracemalloc.start()
    try:
        bootstrap_scores(outcomes, layout, resamples=RESAMPLES, pairs=PAIRS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024**2


def machine_description() -> list[str]:
    lines = []
    lscpu_path = shutil.which("lscpu")
    model = "unknown (lscpu not found)"
    if lscpu_path is not None:
        try:
            output = subprocess.run(  # noqa: S603 (a fixed command)
                [lscpu_path], capture_output=True, text=True, check=True
            ).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            model = f"unknown (lscpu failed: {error})"
        else:
            model = "unknown (no Model name line in lscpu output)"
            for line in output.splitlines():
                if line.startswith("Model name"):
                    model = line.split(":", 1)[1].strip()
                    break

    lines.append(f"CPU: {model}")
    lines.append(
        f"CPUs available to this process (as nproc counts): {len(os.sched_getaffinity(0))}"
    )

    try:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        total_gib = int(fields["MemTotal"].split()[0]) / 1024**2
        available_gib = int(fields["MemAvailable"].split()[0]) / 1024**2
        lines.append(f"Memory: {total_gib:.1f} GiB total, {available_gib:.1f} GiB available")
    except (OSError, KeyError, ValueError, IndexError):
        lines.append("Memory: unknown (/proc/meminfo unreadable)")

    lines.append(f"Python {platform.python_version()}, numpy {np.__version__}")
    # Other processes on a shared machine slow the runs, so the record shows how busy it was.
    one_minute, five_minutes, _ = os.getloadavg()
    lines.append(
        f"Load average after the runs: {one_minute:.2f} (1 min), {five_minutes:.2f} (5 min)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="number of timed runs (default 5)")
    parser.add_argument("--markdown", type=Path, help="write the results as Markdown to this file")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")

    outcomes, layout = build_inputs()
    seconds = time_runs(outcomes, layout, args.runs)
    median = statistics.median(seconds)
    peak = peak_memory_mib(outcomes, layout)
    verdict = "met" if median < GOAL_SECONDS else "missed"
    runs_text = ", ".join(f"{value:.3f}" for value in seconds)

    print(f"bootstrap_scores: median {median:.3f} s over {args.runs} runs ({runs_text})")
    print(f"goal: under {GOAL_SECONDS:.1f} s: {verdict}")
    print(f"peak traced memory: {peak:.0f} MiB")

    if args.markdown:
        command = shlex.join([".venv/bin/python", "bench/intervals.py", *sys.argv[1:]])
        date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        entry_array_mib = ENTRIES * RESAMPLES * 8 / 1024**2
        lines = [
            "## Bootstrap intervals",
            "",
            f"Command: `{command}`, run on {date}. `bootstrap_scores` gets {ENTRIES} entries x "
            f"{CATEGORIES * ITEMS_PER_CATEGORY} items ({CATEGORIES} categories of "
            f"{ITEMS_PER_CATEGORY}, {UEG_CATEGORY_COUNT} UEG and "
            f"{CATEGORIES - UEG_CATEGORY_COUNT} GEU) of random 0/1 outcomes, {len(PAIRS)} "
            f"pairs (entries 2k and 2k + 1) and {RESAMPLES:,} resamples. One warm-up call "
            "precedes the timed runs.",
            "",
            *[f"- {line}" for line in machine_description()],
            "",
            "| measure | value |",
            "|---|---|",
            f"| median wall time ({args.runs} runs) | {median:.3f} s |",
            f"| all runs | {runs_text} s |",
            f"| peak memory traced by tracemalloc during one call | {peak:.0f} MiB |",
            "",
            f"- Goal: median under {GOAL_SECONDS:.1f} s: {verdict}",
            f"- One (entries x resamples) float64 array is {entry_array_mib:.0f} MiB.",
            "",
        ]
        args.markdown.write_text("\n".join(lines), encoding="utf-8")
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
