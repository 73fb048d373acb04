"""The leaderboard with intervals: exports agree with the page, stable order, versions, compare."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.service import create_user
from app.benchmarks.service import get_current_benchmark
from app.config import get_settings
from app.leaderboard.compare import compare_models
from app.leaderboard.query import BoardQuery, load_board
from app.models import User
from app.scoring.runs import current_run, finish_if_complete, start_rescore
from app.scoring.service import score_submission
from app.submissions.service import (
    SubmissionForm,
    check_form,
    create_submission,
    validate_for_benchmark,
)
from tests.builders import answered, as_json, demo_file


def submit_scored(
    session: Session,
    user: User,
    name: str,
    letters: dict[int, str] | None = None,
    protocol: str = "direct",
) -> None:
    stem = "GEU_direct" if protocol == "direct" else "GEU_step"
    settings = get_settings()
    benchmark = get_current_benchmark(session, settings.benchmark_name)
    form = check_form(SubmissionForm(name, "unified", protocol, "GEU"))
    data = as_json(answered(stem, letters))
    upload = validate_for_benchmark(session, benchmark, form, data, f"{stem}.json", 50)
    submission = create_submission(session, user, benchmark, form, upload, data)
    score_submission(session, submission.id, settings)
    submission.status = "scored"
    from app.models import utc_now

    submission.finished_at = utc_now()
    session.flush()


def wrong_on(count: int) -> dict[int, str]:
    items = demo_file("GEU_direct")
    return {item["index"]: ("A" if item["answer"] != "A" else "B") for item in items[:count]}


@pytest.fixture
def user(db_session: Session) -> User:
    return create_user(db_session, "board@example.org")


def test_identical_models_keep_order_across_pages(db_session: Session, user: User) -> None:
    names = [f"Tie model {number:02d}" for number in range(30)]
    for name in reversed(names):
        submit_scored(db_session, user, name, wrong_on(5))

    orders = []
    for _ in range(3):
        seen = []
        for page in (1, 2, 3):
            board = load_board(
                db_session,
                "realunify",
                BoardQuery(sort="GEU", source="submissions", page=page, per_page=10),
            )
            seen += [row.model_name for row in board.rows]
        orders.append(seen)

    assert orders[0] == sorted(names)
    assert orders[0] == orders[1] == orders[2]
    board = load_board(
        db_session, "realunify", BoardQuery(sort="GEU", source="submissions", per_page=30)
    )
    assert {row.rank for row in board.rows} == {1}


def page_rows(html: str) -> list[tuple[str, str, str]]:
    """(model slug, protocol, total text) of each leaderboard table row."""
    rows = re.findall(
        r"<tr class=\"(?:reference|submitted)\" data-model=\"([^\"]+)\" "
        r"data-protocol=\"([^\"]+)\">(.*?)</tr>",
        html,
        re.S,
    )
    result = []
    for slug, protocol, body in rows:
        numbers = re.findall(r'<td class="num strong"[^>]*>([^<]*)', body)
        result.append((slug, protocol, numbers[-1].strip()))
    return result


def test_csv_json_api_and_page_agree(client: TestClient, db_session: Session, user: User) -> None:
    submit_scored(db_session, user, "Agree direct", wrong_on(3))
    submit_scored(db_session, user, "Agree direct", wrong_on(1), protocol="stepwise")
    query = "sort=GEU&order=desc&per_page=15&page=2"

    api = client.get(f"/api/v1/leaderboard?{query}").json()
    exported = client.get(f"/leaderboard.json?{query}").json()
    table = list(csv.DictReader(io.StringIO(client.get(f"/leaderboard.csv?{query}").text)))
    page = page_rows(client.get(f"/?{query}").text)

    assert api == exported
    assert len(api["rows"]) == len(table) == len(page) == 15
    for record, line, shown in zip(api["rows"], table, page, strict=True):
        assert (record["model_slug"], record["protocol"]) == (shown[0], shown[1])
        assert line["model"] == record["model"]
        assert line["protocol"] == record["protocol"]
        assert str(record["position"]) == line["position"]
        for key in ("UEG", "GEU", "total"):
            value = record[key]["value"]
            assert line[key] == ("" if value is None else str(value))
        total = record["total"]["value"]
        assert shown[2] == ("–" if total is None else f"{total:.1f}")


def test_reference_gain_has_interval(db_session: Session) -> None:
    board = load_board(db_session, "realunify", BoardQuery(source="reference", per_page=1000))
    rows = {(row.model_name, row.protocol): row for row in board.rows}

    bagel = rows[("BAGEL-7B", "stepwise")].gains["UEG"]
    nano = rows[("Nano Banana", "direct")]

    assert bagel.value == pytest.approx(15.0, abs=0.05)
    assert bagel.low is not None and bagel.high is not None
    assert bagel.low < 15.0 < bagel.high
    assert nano.gains == {}
    assert (
        rows[("BAGEL-7B", "direct")].cells["UEG"].low
        < 32.7
        < rows[("BAGEL-7B", "direct")].cells["UEG"].high
    )


def test_intervals_are_the_same_on_every_load(db_session: Session, user: User) -> None:
    submit_scored(db_session, user, "Seeded model", wrong_on(7))
    from app.leaderboard import query

    first = load_board(db_session, "realunify", BoardQuery(source="submissions"))
    query._cache.clear()
    second = load_board(db_session, "realunify", BoardQuery(source="submissions"))

    assert [row.cells["GEU"] for row in first.rows] == [row.cells["GEU"] for row in second.rows]


def test_rescore_makes_new_version_with_rank_changes(db_session: Session, user: User) -> None:
    submit_scored(db_session, user, "Version model", wrong_on(2))
    old = current_run(db_session)

    run, submissions = start_rescore(db_session, get_settings())
    for submission in submissions:
        score_submission(db_session, submission.id, get_settings(), run_id=run.id)
    assert finish_if_complete(db_session, run.id)

    assert current_run(db_session).id == run.id
    now = load_board(db_session, "realunify", BoardQuery(source="submissions"))
    before = load_board(db_session, "realunify", BoardQuery(source="submissions", version=old.id))
    assert now.run.id == run.id
    assert before.run.id == old.id
    assert before.current_ranks[("version-model", "direct")] == now.rows[0].rank
    assert [row.cells["GEU"].value for row in before.rows] == [
        row.cells["GEU"].value for row in now.rows
    ]


def test_compare_paired_for_submissions(db_session: Session, user: User) -> None:
    submit_scored(db_session, user, "Compare A", wrong_on(10))
    submit_scored(db_session, user, "Compare B", wrong_on(2))
    board = load_board(db_session, "realunify", BoardQuery(sort="model", per_page=1000))

    comparison = compare_models(db_session, board, "compare-a", "compare-b", "direct")

    assert comparison.paired
    difference = comparison.differences["GEU"]
    assert difference.value == pytest.approx(
        comparison.second.cells["GEU"].value - comparison.first.cells["GEU"].value
    )
    assert difference.low is not None and difference.low > 0
    assert difference.p_value is not None and difference.p_value < 0.05


def test_compare_with_reference_is_unpaired(db_session: Session) -> None:
    board = load_board(db_session, "realunify", BoardQuery(sort="model", per_page=1000))

    comparison = compare_models(db_session, board, "bagel-7b", "nano-banana", "direct")

    assert not comparison.paired
    assert comparison.differences["total"].value is not None


def test_compare_page_rejects_missing_protocol(client: TestClient) -> None:
    response = client.get("/compare?a=nano-banana&b=bagel-7b&protocol=stepwise")

    assert response.status_code == 404
    assert "no stepwise results" in response.text


def test_board_rejects_unknown_parameter(client: TestClient) -> None:
    response = client.get("/api/v1/leaderboard?colour=blue")

    assert response.status_code == 422
    assert "colour" in response.json()["detail"]
