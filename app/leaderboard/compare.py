"""Compare two models under one protocol: per-category differences with intervals and a test."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.leaderboard.query import BOOTSTRAP_RESAMPLES, Board
from app.leaderboard.service import LeaderboardRow
from app.leaderboard.uncertainty import Cell, bootstrap_rows, cells_of, unpaired_difference
from app.models import PROTOCOLS
from app.scoring.categories import ALL_CATEGORIES

KEYS = (*ALL_CATEGORIES, "UEG", "GEU", "total")


@dataclass(frozen=True)
class Comparison:
    first: LeaderboardRow
    second: LeaderboardRow
    # Second minus first, in percentage points, with 95 % intervals and two-sided p-values.
    differences: dict[str, Cell]
    paired: bool

    @property
    def method(self) -> str:
        if self.paired:
            return (
                "paired bootstrap over the same resampled items for both models "
                "(10,000 resamples); the p-value is the two-sided bootstrap p-value"
            )
        return (
            "unpaired normal approximation from each row's interval, because a reference row "
            "only has percentages; the p-value comes from the z statistic"
        )


def compare_models(
    session: Session, board: Board, first_slug: str, second_slug: str, protocol: str
) -> Comparison:
    if protocol not in PROTOCOLS:
        raise InvalidInput(f"protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    first = _row(board, first_slug, protocol)
    second = _row(board, second_slug, protocol)
    scored = not first.is_reference and not second.is_reference
    if scored and board.benchmark is not None:
        _, differences = bootstrap_rows(
            session,
            board.benchmark.id,
            board.run.id,
            [first, second],
            BOOTSTRAP_RESAMPLES,
            [(0, 1)],
        )
        return Comparison(first, second, cells_of(differences[(0, 1)]), paired=True)
    cells = {key: unpaired_difference(first.cells.get(key), second.cells.get(key)) for key in KEYS}
    return Comparison(first, second, cells, paired=False)


def _row(board: Board, slug: str, protocol: str) -> LeaderboardRow:
    for row in board.rows:
        if row.model_slug == slug and row.protocol == protocol:
            return row
    raise NotFound(f"model {slug!r} has no {protocol} results; pick another model or protocol")
