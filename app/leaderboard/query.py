"""Leaderboard filters and sorting shared by the page and the API."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.benchmarks.service import get_current_benchmark
from app.errors import InvalidInput, NotFound
from app.leaderboard.service import SORT_KEYS, LeaderboardRow, build_rows, sort_rows
from app.models import MODEL_KINDS, PROTOCOLS, Benchmark

SOURCES = ("all", "submissions", "reference")


@dataclass(frozen=True)
class BoardQuery:
    sort: str = "total"
    order: str = "desc"
    protocol: str | None = None
    kind: str | None = None
    source: str = "all"

    def checked(self) -> BoardQuery:
        if self.sort not in SORT_KEYS:
            raise InvalidInput(f"sort: {self.sort!r} is not one of {', '.join(SORT_KEYS)}")
        if self.order not in ("asc", "desc"):
            raise InvalidInput(f"order: {self.order!r} is not asc or desc")
        if self.protocol and self.protocol not in PROTOCOLS:
            raise InvalidInput(f"protocol: {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.kind and self.kind not in MODEL_KINDS:
            raise InvalidInput(f"kind: {self.kind!r} is not one of {', '.join(MODEL_KINDS)}")
        if self.source not in SOURCES:
            raise InvalidInput(f"source: {self.source!r} is not one of {', '.join(SOURCES)}")
        return self


@dataclass
class Board:
    benchmark: Benchmark | None
    rows: list[LeaderboardRow]
    query: BoardQuery


def load_board(session: Session, benchmark_name: str, query: BoardQuery) -> Board:
    query = query.checked()
    try:
        benchmark: Benchmark | None = get_current_benchmark(session, benchmark_name)
    except NotFound:
        benchmark = None
    rows = build_rows(session, benchmark, include_reference=query.source != "submissions")
    if query.source == "reference":
        rows = [row for row in rows if row.is_reference]
    if query.protocol:
        rows = [row for row in rows if row.protocol == query.protocol]
    if query.kind:
        rows = [row for row in rows if row.model_kind == query.kind]
    sort_rows(rows, query.sort, descending=query.order == "desc")
    return Board(benchmark, rows, query)
