"""Leaderboard filters, sorting, rank bands and pages, shared by the page, exports and the API.

The rows with their intervals are computed once per state of the scores and kept in memory:
the bootstrap is the slow part, and the scores change only when a submission is scored.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.benchmarks.service import get_current_benchmark
from app.config import get_settings
from app.errors import InvalidInput, NotFound
from app.leaderboard.service import SORT_KEYS, LeaderboardRow, build_rows, sort_rows
from app.leaderboard.uncertainty import Cell, add_reference_gaps, add_uncertainty
from app.models import (
    MODEL_KINDS,
    PROTOCOLS,
    Benchmark,
    Model,
    ReferenceResult,
    ScoringRun,
    Submission,
)
from app.scoring.runs import current_run

SOURCES = ("all", "submissions", "reference")
AXES = ("UEG", "GEU")
MAX_PER_PAGE = 1000
MAX_ROW_ID = 2_147_483_647
BOOTSTRAP_RESAMPLES = 10_000


@dataclass(frozen=True)
class BoardQuery:
    sort: str = "total"
    order: str = "desc"
    protocol: str | None = None
    kind: str | None = None
    source: str = "all"
    axis: str | None = None
    judge: str | None = None
    version: int | None = None
    page: int = 1
    per_page: int = 100

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
        if self.axis and self.axis not in AXES:
            raise InvalidInput(f"axis: {self.axis!r} is not UEG or GEU")
        if self.page < 1:
            raise InvalidInput("page: must be 1 or more")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise InvalidInput(f"per_page: must be between 1 and {MAX_PER_PAGE}")
        return self

    def without_page(self) -> BoardQuery:
        return replace(self, page=1, per_page=MAX_PER_PAGE)


class BoardParams(BaseModel):
    """Query parameters of the leaderboard page, its exports and the API."""

    model_config = ConfigDict(extra="forbid")

    sort: str = Field(
        "total", description="total, UEG, GEU, gap_total, gap_UEG, a task_type, model"
    )
    order: str = Field("desc", description="asc or desc; undefined values go last")
    protocol: str | None = Field(None, description="direct or stepwise")
    kind: str | None = Field(None, description="model kind, e.g. unified")
    source: str = Field("all", description="all, submissions or reference")
    axis: str | None = Field(None, description="UEG or GEU: rows with a score on that axis")
    judge: str | None = Field(None, description="rows whose UEG scores come from this judge")
    version: int | None = Field(
        None, ge=1, le=MAX_ROW_ID, description="scoring run id (default: the current one)"
    )
    page: int = Field(1, ge=1, le=1_000_000, description="page number, from 1")
    per_page: int = Field(100, description=f"rows per page, at most {MAX_PER_PAGE}")
    intervals: bool = Field(False, description="page only: show the 95 % intervals")

    @field_validator("protocol", "kind", "axis", "judge", "version", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def to_query(self) -> BoardQuery:
        return BoardQuery(
            sort=self.sort,
            order=self.order,
            protocol=self.protocol,
            kind=self.kind,
            source=self.source,
            axis=self.axis,
            judge=self.judge,
            version=self.version,
            page=self.page,
            per_page=self.per_page,
        )


@dataclass
class Board:
    benchmark: Benchmark | None
    run: ScoringRun
    current_run_id: int
    rows: list[LeaderboardRow]
    query: BoardQuery
    total_rows: int
    judges: list[str]
    # For an older version: (model slug, protocol) to its rank in the current version.
    current_ranks: dict[tuple[str, str], int | None] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total_rows / self.query.per_page))

    @property
    def first_position(self) -> int:
        return (self.query.page - 1) * self.query.per_page + 1


_cache: OrderedDict[tuple[object, ...], list[LeaderboardRow]] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 16


def load_board(session: Session, benchmark_name: str, query: BoardQuery) -> Board:
    query = query.checked()
    try:
        benchmark: Benchmark | None = get_current_benchmark(session, benchmark_name)
    except NotFound:
        benchmark = None
    current = current_run(session)
    run = current
    if query.version is not None and query.version != current.id:
        found = session.get(ScoringRun, query.version)
        if found is None:
            raise NotFound(f"version: scoring run {query.version} not found")
        run = found

    all_rows = _rows(session, benchmark, run.id)
    judges = sorted({row.judge for row in all_rows if row.judge})
    rows = _filter(all_rows, query)
    sort_rows(rows, query.sort, descending=query.order == "desc")
    _rank(rows, query.sort)

    current_ranks: dict[tuple[str, str], int | None] = {}
    if run.id != current.id:
        now = _filter(_rows(session, benchmark, current.id), query)
        sort_rows(now, query.sort, descending=query.order == "desc")
        _rank(now, query.sort)
        current_ranks = {(row.model_slug, row.protocol): row.rank for row in now}

    start = (query.page - 1) * query.per_page
    page_rows = rows[start : start + query.per_page]
    return Board(benchmark, run, current.id, page_rows, query, len(rows), judges, current_ranks)


def _rows(session: Session, benchmark: Benchmark | None, run_id: int) -> list[LeaderboardRow]:
    """Build every row of a run with its intervals, from the cache when the scores are unchanged."""
    key = (benchmark.id if benchmark else None, run_id, *board_fingerprint(session))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return [replace(row) for row in _cache[key]]
    rows = build_rows(session, benchmark, run_id=run_id)
    add_uncertainty(session, benchmark.id if benchmark else None, run_id, rows, BOOTSTRAP_RESAMPLES)
    add_reference_gaps(rows)
    with _cache_lock:
        _cache[key] = rows
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return [replace(row) for row in rows]


_fingerprint_memo: tuple[float, tuple[object, ...]] | None = None


def board_fingerprint(session: Session) -> tuple[object, ...]:
    """Values that change whenever the leaderboard's content can change.

    It validates the caches on every page view, so it is one query, and its result is kept for
    ``leaderboard_cache_seconds``: a new score can take that long to show in each process.
    """
    global _fingerprint_memo
    keep = get_settings().leaderboard_cache_seconds
    now = time.monotonic()
    memo = _fingerprint_memo
    if keep > 0 and memo is not None and now - memo[0] < keep:
        return memo[1]
    fingerprint = _query_fingerprint(session)
    _fingerprint_memo = (now, fingerprint)
    return fingerprint


def _query_fingerprint(session: Session) -> tuple[object, ...]:
    scored = Submission.status == "scored"
    current = Benchmark.is_current.is_(True)
    row = session.execute(
        select(
            select(func.count()).where(scored).scalar_subquery(),
            select(func.max(Submission.finished_at)).where(scored).scalar_subquery(),
            select(func.count()).select_from(ReferenceResult).scalar_subquery(),
            select(func.max(ScoringRun.id)).scalar_subquery(),
            select(func.max(ScoringRun.completed_at)).scalar_subquery(),
            select(func.max(Benchmark.id)).where(current).scalar_subquery(),
            select(func.max(Benchmark.loaded_at)).where(current).scalar_subquery(),
            # Model names, kinds and links show on the page and change without a new score.
            select(func.count()).select_from(Model).scalar_subquery(),
            select(func.max(Model.created_at)).scalar_subquery(),
        )
    ).one()
    return tuple(row)


def _filter(rows: list[LeaderboardRow], query: BoardQuery) -> list[LeaderboardRow]:
    selected = list(rows)
    if query.source == "reference":
        selected = [row for row in selected if row.is_reference]
    elif query.source == "submissions":
        selected = [row for row in selected if not row.is_reference]
    if query.protocol:
        selected = [row for row in selected if row.protocol == query.protocol]
    if query.kind:
        selected = [row for row in selected if row.model_kind == query.kind]
    if query.axis:
        selected = [row for row in selected if row.axes.get(query.axis) is not None]
    if query.judge:
        selected = [row for row in selected if row.judge == query.judge]
    return selected


def _rank(rows: list[LeaderboardRow], sort: str) -> None:
    """Rank bands on the sorted column: 1 + rows whose lower bound is above this upper bound."""
    from app.stats.ranks import rank_bands

    if sort == "model":
        for row in rows:
            row.rank = None
        return
    cells = [sorted_cell(row, sort) for row in rows]
    lows = [cell.low if cell else None for cell in cells]
    highs = [cell.high if cell else None for cell in cells]
    for row, rank in zip(rows, rank_bands(lows, highs), strict=True):
        row.rank = rank


def sorted_cell(row: LeaderboardRow, sort: str) -> Cell | None:
    """Return the cell behind a sort key: a score, or a stepwise-minus-direct gain for gap_ keys."""
    if sort.startswith("gap_"):
        return row.gains.get(sort.removeprefix("gap_"))
    return row.cells.get(sort)
