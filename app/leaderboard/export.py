"""One record per leaderboard row, shared by the API, the JSON and CSV exports and the page."""

from __future__ import annotations

import csv
import io
from typing import Any

from app.leaderboard.query import Board
from app.leaderboard.service import LeaderboardRow
from app.leaderboard.uncertainty import Cell
from app.models import iso_utc
from app.scoring.categories import ALL_CATEGORIES

SUMMARY = ("UEG", "GEU", "total")


def cell_record(cell: Cell | None) -> dict[str, float | None]:
    if cell is None:
        return {"value": None, "low": None, "high": None}
    record = {"value": _round(cell.value), "low": _round(cell.low), "high": _round(cell.high)}
    if cell.p_value is not None:
        record["p_value"] = round(cell.p_value, 4)
    return record


def row_record(row: LeaderboardRow, position: int) -> dict[str, Any]:
    """Describe a row as the API and exports give it: percent values with 95 % intervals."""
    return {
        "position": position,
        "rank": row.rank,
        "model": row.model_name,
        "model_slug": row.model_slug,
        "model_kind": row.model_kind,
        "link": row.link,
        "protocol": row.protocol,
        "source": "reference" if row.is_reference else "submission",
        "run_by_service": row.run_by_service,
        "reported_by": row.source,
        "judge": row.judge,
        "judge_error_rate": None
        if row.judge_error_rate is None
        else round(row.judge_error_rate, 4),
        "categories": {
            key: {
                **cell_record(row.cells.get(key)),
                "correct": row.categories[key].correct if key in row.categories else None,
                "total": row.categories[key].total if key in row.categories else None,
            }
            for key in ALL_CATEGORIES
        },
        "UEG": cell_record(row.cells.get("UEG")),
        "GEU": cell_record(row.cells.get("GEU")),
        "total": cell_record(row.cells.get("total")),
        "stepwise_minus_direct": {
            key: cell_record(row.gains.get(key)) for key in (*ALL_CATEGORIES, *SUMMARY)
        },
        "gap_to_pipeline": {key: cell_record(cell) for key, cell in row.to_pipeline.items()},
        "gap_to_specialist": {key: cell_record(cell) for key, cell in row.to_specialist.items()},
        "submissions": {axis: str(key) for axis, key in row.submissions.items()},
        "scored_at": iso_utc(row.scored_at),
    }


def board_record(board: Board) -> dict[str, Any]:
    benchmark = board.benchmark
    return {
        "benchmark": None
        if benchmark is None
        else {"name": benchmark.name, "version": benchmark.version, "is_demo": benchmark.is_demo},
        "scoring_run": {
            "id": board.run.id,
            "label": board.run.label,
            "is_current": board.run.id == board.current_run_id,
        },
        "units": "percent; intervals are 95 %",
        "query": {
            "sort": board.query.sort,
            "order": board.query.order,
            "protocol": board.query.protocol,
            "kind": board.query.kind,
            "source": board.query.source,
            "axis": board.query.axis,
            "judge": board.query.judge,
            "page": board.query.page,
            "per_page": board.query.per_page,
        },
        "total_rows": board.total_rows,
        "pages": board.pages,
        "rows": [
            {
                **row_record(row, board.first_position + offset),
                **_rank_change(board, row),
            }
            for offset, row in enumerate(board.rows)
        ],
    }


def _rank_change(board: Board, row: LeaderboardRow) -> dict[str, Any]:
    if not board.current_ranks:
        return {}
    return {"current_rank": board.current_ranks.get((row.model_slug, row.protocol))}


CSV_SCORES = (*ALL_CATEGORIES, *SUMMARY)


def board_csv(board: Board) -> str:
    """Write the page's rows as CSV, with one column per value and interval bound."""
    header = ["position", "rank", "model", "model_kind", "protocol", "source", "judge"]
    for key in CSV_SCORES:
        header += [key, f"{key}_low", f"{key}_high"]
    for key in SUMMARY:
        header += [f"gain_{key}", f"gain_{key}_low", f"gain_{key}_high"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for record in board_record(board)["rows"]:
        line = [
            record["position"],
            record["rank"],
            record["model"],
            record["model_kind"],
            record["protocol"],
            record["source"],
            record["judge"],
        ]
        for key in CSV_SCORES:
            cell = record["categories"][key] if key in ALL_CATEGORIES else record[key]
            line += [cell["value"], cell["low"], cell["high"]]
        for key in SUMMARY:
            cell = record["stepwise_minus_direct"][key]
            line += [cell["value"], cell["low"], cell["high"]]
        writer.writerow(["" if value is None else value for value in line])
    return buffer.getvalue()


def _round(value: float | None) -> float | None:
    # One decimal, as the page shows, so every export repeats the page's numbers.
    return None if value is None else round(value, 1)
