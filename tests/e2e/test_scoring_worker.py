"""Upload through the API, score in a real Celery worker process, read the leaderboard."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import session_scope
from app.models import ItemVerdict, ScoreAggregate
from app.submissions.queue import enqueue_scoring
from tests.builders import answered, as_json, create_user_with_token, demo_file

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("committed", "celery_worker_process")]


def wait_for_status(
    client: TestClient, submission_id: str, wanted: str = "scored"
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/api/v1/submissions/{submission_id}").json()
        if body["status"] in ("scored", "failed"):
            assert body["status"] == wanted, body
            return body
        time.sleep(0.2)
    raise AssertionError(f"submission {submission_id} still {body['status']} after 60 s")


def wrong_letter(answer: str) -> str:
    return "A" if answer != "A" else "B"


def test_worker_scores_counts_by_hand(live_client: TestClient, auth: dict[str, str]) -> None:
    items = demo_file("GEU_direct")
    # Every third item answered wrongly, in several answer styles.
    styles = ["{}", "Answer: {}", "**{}**", "The answer is {}.", "({})"]
    letters = {}
    expected_correct: Counter[str] = Counter()
    expected_total: Counter[str] = Counter()
    for number, item in enumerate(items):
        letter = wrong_letter(item["answer"]) if number % 3 == 0 else item["answer"]
        letters[item["index"]] = styles[number % len(styles)].format(letter)
        expected_total[item["task_type"]] += 1
        expected_correct[item["task_type"]] += letter == item["answer"]

    response = live_client.post(
        "/api/v1/submissions",
        headers=auth,
        data={"model_name": "Worker Model", "model_kind": "unified", "protocol": "direct"},
        files={"predictions": ("GEU_direct.json", as_json(answered("GEU_direct", letters)))},
    )
    assert response.status_code == 202, response.text
    body = wait_for_status(live_client, response.json()["id"])

    for task_type, total in expected_total.items():
        score = body["scores"][task_type]
        assert score["total"] == total
        assert score["correct"] == expected_correct[task_type]
        assert score["accuracy"] == round(100 * expected_correct[task_type] / total, 2)

    board = live_client.get("/api/v1/leaderboard", params={"source": "submissions"}).json()
    row = next(r for r in board["rows"] if r["model"] == "Worker Model")
    for task_type, total in expected_total.items():
        assert row["categories"][task_type]["correct"] == expected_correct[task_type]
    expected_geu = sum(expected_correct[t] / expected_total[t] for t in expected_total) / 4 * 100
    assert row["GEU"]["value"] == pytest.approx(expected_geu, abs=0.01)
    assert row["GEU"]["low"] <= row["GEU"]["value"] <= row["GEU"]["high"]
    assert row["total"]["value"] is None  # no UEG result, so the mean of all ten is undefined


def test_worker_scores_twice_without_duplicates(
    live_client: TestClient, auth: dict[str, str]
) -> None:
    response = live_client.post(
        "/api/v1/submissions",
        headers=auth,
        data={"model_name": "Twice Model", "model_kind": "unified", "protocol": "stepwise"},
        files={"predictions": ("GEU_step.json", as_json(answered("GEU_step")))},
    )
    submission_id = response.json()["id"]
    first = wait_for_status(live_client, submission_id)

    from uuid import UUID

    assert enqueue_scoring(UUID(submission_id))
    deadline = time.monotonic() + 60
    while True:
        with session_scope() as session:
            from app.models import Submission

            attempts = session.get(Submission, UUID(submission_id)).attempts  # type: ignore[union-attr]
        if (
            attempts >= 2
            and live_client.get(f"/api/v1/submissions/{submission_id}").json()["status"] == "scored"
        ):
            break
        assert time.monotonic() < deadline, "second scoring did not finish"
        time.sleep(0.2)
    second = live_client.get(f"/api/v1/submissions/{submission_id}").json()

    assert second["scores"] == first["scores"]
    with session_scope() as session:
        verdicts = session.scalar(
            select(func.count())
            .select_from(ItemVerdict)
            .where(ItemVerdict.submission_id == UUID(submission_id))
        )
        aggregates = session.scalar(
            select(func.count())
            .select_from(ScoreAggregate)
            .where(
                ScoreAggregate.submission_id == UUID(submission_id),
                ScoreAggregate.level == "category",
            )
        )
    assert verdicts == len(demo_file("GEU_step"))
    assert aggregates == 4
    assert all(score["accuracy"] == 100.0 for score in second["scores"].values())


def test_items_page_is_for_submitter_only(live_client: TestClient, auth: dict[str, str]) -> None:
    response = live_client.post(
        "/api/v1/submissions",
        headers=auth,
        data={"model_name": "Private Items", "model_kind": "unified", "protocol": "direct"},
        files={"predictions": ("GEU_direct.json", as_json(answered("GEU_direct", {0: "no idea"})))},
    )
    submission_id = response.json()["id"]
    wait_for_status(live_client, submission_id)
    with session_scope() as session:
        other = create_user_with_token(session, "someone-else@example.org")

    mine = live_client.get(f"/api/v1/submissions/{submission_id}/items", headers=auth)
    theirs = live_client.get(
        f"/api/v1/submissions/{submission_id}/items", headers={"Authorization": f"Bearer {other}"}
    )

    assert mine.status_code == 200
    first = next(item for item in mine.json() if item["index"] == 0)
    assert first["extracted"] is None
    assert first["correct"] is False
    assert first["reason"] == "no choice found"
    assert theirs.status_code == 404


def test_rescore_command_builds_new_version(live_client: TestClient, auth: dict[str, str]) -> None:
    import os
    import subprocess
    import sys

    response = live_client.post(
        "/api/v1/submissions",
        headers=auth,
        data={"model_name": "Rescored Model", "model_kind": "unified", "protocol": "direct"},
        files={
            "predictions": ("GEU_direct.json", as_json(answered("GEU_direct", {0: "A", 1: "B"})))
        },
    )
    first = wait_for_status(live_client, response.json()["id"])
    before = live_client.get("/api/v1/versions").json()

    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "rescore"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    run_id = int(result.stdout.split()[2].rstrip(":"))
    deadline = time.monotonic() + 60
    while True:
        versions = {v["id"]: v for v in live_client.get("/api/v1/versions").json()}
        if versions[run_id]["is_current"]:
            break
        assert time.monotonic() < deadline, versions
        time.sleep(0.2)

    assert run_id not in {v["id"] for v in before}
    board = live_client.get("/api/v1/leaderboard", params={"source": "submissions"}).json()
    old = live_client.get(
        "/api/v1/leaderboard", params={"source": "submissions", "version": before[0]["id"]}
    ).json()
    assert board["scoring_run"]["id"] == run_id
    assert old["scoring_run"]["is_current"] is False
    row = next(r for r in board["rows"] if r["model"] == "Rescored Model")
    old_row = next(r for r in old["rows"] if r["model"] == "Rescored Model")
    assert row["GEU"] == old_row["GEU"]
    assert old_row["current_rank"] == row["rank"]
    assert (
        live_client.get(f"/api/v1/submissions/{response.json()['id']}").json()["scores"]
        == first["scores"]
    )
