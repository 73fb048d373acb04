"""Reference rows of the RealUnify paper (arXiv:2509.24897v2): averages, gaps, undefined values."""

from __future__ import annotations

import csv
from collections import defaultdict

import pytest
from sqlalchemy.orm import Session

from app.leaderboard.reference import PAPER_RESULTS
from app.leaderboard.service import LeaderboardRow, build_rows, sort_rows
from app.scoring.categories import GEU_CATEGORIES, UEG_CATEGORIES


def reference_rows(session: Session) -> dict[tuple[str, str], LeaderboardRow]:
    return {(row.model_name, row.protocol): row for row in build_rows(session, None)}


def paper_values() -> dict[tuple[str, str], dict[str, float]]:
    values: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    with PAPER_RESULTS.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            values[(row["model"], row["protocol"])][row["task_type"]] = float(
                row["accuracy_percent"]
            )
    return values


def test_bagel_ueg_gain_matches_paper(db_session: Session) -> None:
    rows = reference_rows(db_session)

    direct, stepwise = rows[("BAGEL-7B", "direct")], rows[("BAGEL-7B", "stepwise")]

    assert direct.axes["UEG"] == pytest.approx(32.7, abs=0.05)
    assert stepwise.axes["UEG"] == pytest.approx(47.7, abs=0.05)
    assert stepwise.gaps["UEG"] == pytest.approx(15.0, abs=0.1)
    assert direct.gaps["UEG"] == stepwise.gaps["UEG"]


def test_every_reference_row_averages_its_categories(db_session: Session) -> None:
    rows = reference_rows(db_session)

    for key, categories in paper_values().items():
        row = rows[key]
        for axis, names in (("UEG", UEG_CATEGORIES), ("GEU", GEU_CATEGORIES)):
            if all(name in categories for name in names):
                assert row.axes[axis] == pytest.approx(
                    sum(categories[n] for n in names) / len(names)
                )
            else:
                assert row.axes[axis] is None, key


def test_single_protocol_model_has_no_gap(db_session: Session) -> None:
    rows = reference_rows(db_session)

    nano = rows[("Nano Banana", "direct")]

    assert ("Nano Banana", "stepwise") not in rows
    assert nano.gaps == {"UEG": None, "GEU": None, "total": None}


def test_specialist_missing_axis_leaves_total_undefined(db_session: Session) -> None:
    rows = reference_rows(db_session)

    gpt = rows[("GPT-4.1", "direct")]

    assert gpt.axes["UEG"] is None
    assert gpt.axes["GEU"] is not None
    assert gpt.total is None


@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
def test_sort_puts_undefined_last(db_session: Session, descending: bool) -> None:
    rows = build_rows(db_session, None)

    sort_rows(rows, "total", descending=descending)

    totals = [row.total for row in rows]
    defined = [value for value in totals if value is not None]
    assert defined, "some reference rows have a total"
    assert totals[: len(defined)] == sorted(defined, reverse=descending)
    assert all(value is None for value in totals[len(defined) :])


def test_sort_ties_are_stable_by_name(db_session: Session) -> None:
    first = build_rows(db_session, None)
    second = list(reversed(build_rows(db_session, None)))

    sort_rows(first, "gap_total")
    sort_rows(second, "gap_total")

    assert [(r.model_name, r.protocol) for r in first] == [
        (r.model_name, r.protocol) for r in second
    ]
