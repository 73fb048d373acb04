"""REST endpoints for the leaderboard, models and the loaded benchmark."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from app.benchmarks.service import get_current_benchmark
from app.config import get_settings
from app.leaderboard.export import board_record
from app.leaderboard.query import BoardParams, load_board
from app.models import BenchmarkItem, iso_utc
from app.scoring.runs import current_run, list_runs
from app.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["leaderboard"])


@router.get("/leaderboard", summary="Leaderboard rows with 95 % intervals and rank bands")
def leaderboard(session: SessionDep, query: Annotated[BoardParams, Query()]) -> dict[str, Any]:
    board = load_board(session, get_settings().benchmark_name, query.to_query())
    return board_record(board)


@router.get("/versions", summary="Scoring runs: versions of the scores")
def versions(session: SessionDep) -> list[dict[str, Any]]:
    current = current_run(session).id
    return [
        {
            "id": run.id,
            "label": run.label,
            "status": run.status,
            "is_current": run.id == current,
            "submissions_total": run.submissions_total,
            "created_at": iso_utc(run.created_at),
            "completed_at": iso_utc(run.completed_at),
        }
        for run in list_runs(session)
    ]


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
