"""REST endpoints for the leaderboard, models and the loaded benchmark."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from app.benchmarks.service import get_current_benchmark
from app.config import get_settings
from app.leaderboard.query import BoardQuery, load_board
from app.leaderboard.service import LeaderboardRow
from app.models import BenchmarkItem, iso_utc
from app.scoring.categories import ALL_CATEGORIES, AXIS_OF_CATEGORY, CATEGORY_LABELS
from app.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["leaderboard"])


@router.get("/leaderboard", summary="Leaderboard rows, one per model and protocol")
def leaderboard(
    session: SessionDep,
    sort: Annotated[
        str, Query(description="total, UEG, GEU, gap_total, a task_type, ...")
    ] = "total",
    order: Annotated[str, Query(description="asc or desc; undefined values go last")] = "desc",
    protocol: Annotated[str | None, Query(description="direct or stepwise")] = None,
    kind: Annotated[str | None, Query(description="model kind, e.g. unified")] = None,
    source: Annotated[str, Query(description="all, submissions or reference")] = "all",
) -> dict[str, Any]:
    board = load_board(
        session, get_settings().benchmark_name, BoardQuery(sort, order, protocol, kind, source)
    )
    benchmark = board.benchmark
    return {
        "benchmark": None
        if benchmark is None
        else {"name": benchmark.name, "version": benchmark.version, "is_demo": benchmark.is_demo},
        "units": "percent",
        "categories": [
            {"task_type": key, "axis": AXIS_OF_CATEGORY[key], "label": CATEGORY_LABELS[key]}
            for key in ALL_CATEGORIES
        ],
        "sort": board.query.sort,
        "order": board.query.order,
        "rows": [row_body(row, rank) for rank, row in enumerate(board.rows, start=1)],
    }


def row_body(row: LeaderboardRow, position: int) -> dict[str, Any]:
    return {
        "position": position,
        "model": row.model_name,
        "model_slug": row.model_slug,
        "model_kind": row.model_kind,
        "link": row.link,
        "protocol": row.protocol,
        "source": "reference" if row.is_reference else "submission",
        "reported_by": row.source,
        "categories": {
            key: {
                "accuracy": _round(score.accuracy),
                "correct": score.correct,
                "total": score.total,
            }
            for key, score in sorted(row.categories.items())
        },
        "UEG": _round(row.axes.get("UEG")),
        "GEU": _round(row.axes.get("GEU")),
        "total": _round(row.total),
        "stepwise_minus_direct": {key: _round(value) for key, value in row.gaps.items()},
        "judge": row.judge,
        "judge_error_rate": None
        if row.judge_error_rate is None
        else round(row.judge_error_rate, 4),
        "submissions": {axis: str(key) for axis, key in row.submissions.items()},
        "scored_at": iso_utc(row.scored_at),
    }


@router.get("/benchmark", summary="The loaded benchmark: version, files and item counts")
def benchmark(session: SessionDep) -> dict[str, Any]:
    current = get_current_benchmark(session, get_settings().benchmark_name)
    counts = session.execute(
        select(BenchmarkItem.axis, BenchmarkItem.protocol, BenchmarkItem.task_type, func.count())
        .where(BenchmarkItem.benchmark_id == current.id)
        .group_by(BenchmarkItem.axis, BenchmarkItem.protocol, BenchmarkItem.task_type)
    ).all()
    items: dict[str, dict[str, int]] = {}
    for axis, protocol, task_type, count in counts:
        items.setdefault(f"{axis}_{protocol}", {})[task_type] = count
    return {
        "name": current.name,
        "version": current.version,
        "is_demo": current.is_demo,
        "loaded_at": iso_utc(current.loaded_at),
        "files": current.files,
        "items_per_category": items,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
