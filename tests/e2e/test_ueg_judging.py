"""UEG end to end: upload images, judge them in a real worker with the stand-in judge, re-judge."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from app.config import get_settings
from app.db import session_scope
from app.demo import build
from app.models import JudgeCall, Submission

pytestmark = [
    pytest.mark.worker,
    pytest.mark.usefixtures("committed", "judge_server", "celery_worker_process"),
]

BASELINES = Path(get_settings().demo_baselines_path)


@pytest.fixture(autouse=True)
def healthy_judge(judge_server: str) -> Iterator[None]:
    control(judge_server, fault_rate=0.0)
    yield
    control(judge_server, fault_rate=0.0)


def control(judge_server: str, **settings: Any) -> None:
    httpx.post(f"{judge_server}/control", json=settings, timeout=5).raise_for_status()


def judge_requests(judge_server: str) -> int:
    stats: dict[str, Any] = httpx.get(f"{judge_server}/stats", timeout=5).json()
    return int(stats["requests"])


def zip_of(result: list[dict[str, Any]], root: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for item in result:
            path = BASELINES / item["generated_image"]
            if path.is_file():
                archive.write(path, root + item["generated_image"])
    return buffer.getvalue()


def upload(
    client: TestClient, auth: dict[str, str], stem: str, name: str, images: bytes, protocol: str
) -> httpx.Response:
    result = (BASELINES / f"{stem}.partial.json").read_bytes()
    return client.post(
        "/api/v1/submissions",
        headers=auth,
        data={"model_name": name, "model_kind": "unified", "protocol": protocol, "axis": "UEG"},
        files=[("predictions", (f"{stem}.json", result)), ("images", ("images.zip", images))],
    )


def wait_scored(client: TestClient, submission_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/api/v1/submissions/{submission_id}").json()
        if body["status"] in ("scored", "failed"):
            assert body["status"] == "scored", body
            return body
        time.sleep(0.2)
    raise AssertionError(f"submission {submission_id} not scored after 120 s")


def expected_accuracy(stepwise: bool) -> dict[str, float]:
    tasks = build.ueg_tasks()
    return build.ueg_accuracy_by_category(tasks, build.make_ueg_partial(tasks, stepwise))


@pytest.mark.parametrize(("stem", "protocol"), [("UEG_direct", "direct"), ("UEG_step", "stepwise")])
def test_partial_model_scores_as_its_scenes(
    live_client: TestClient, auth: dict[str, str], stem: str, protocol: str
) -> None:
    result = json.loads((BASELINES / f"{stem}.partial.json").read_text())

    response = upload(
        live_client, auth, stem, f"UEG {protocol}", zip_of(result, "run-1/"), protocol
    )

    assert response.status_code == 202, response.text
    report = response.json()["report"]
    assert len(report["missing_images"]) == 1
    body = wait_scored(live_client, response.json()["id"])
    expected = expected_accuracy(stepwise=protocol == "stepwise")
    for category, accuracy in expected.items():
        assert body["scores"][category]["accuracy"] == pytest.approx(accuracy), category
        assert body["scores"][category]["judge_errors"] == 0
    assert body["judge"]["model"] == "demo-shape-judge"
    assert body["missing_image_count"] == 1


def test_faulty_judge_never_scores_wrongly(
    live_client: TestClient, auth: dict[str, str], judge_server: str
) -> None:
    result = json.loads((BASELINES / "UEG_direct.partial.json").read_text())
    expected = expected_accuracy(stepwise=False)
    with session_scope() as session:
        session.execute(delete(JudgeCall))  # earlier tests' answers would hide the faults
    control(judge_server, fault_rate=0.3, faults=["500", "429", "timeout", "garbage"], seed=7)

    response = upload(live_client, auth, "UEG_direct", "UEG faulty", zip_of(result), "direct")
    first = wait_scored(live_client, response.json()["id"])
    submission_id = response.json()["id"]
    items = live_client.get(f"/api/v1/submissions/{submission_id}/items", headers=auth).json()

    errors = [item for item in items if item["judge_error"]]
    assert errors, "with 30% faults and two attempts some questions fail"
    assert first["judge"]["errors"] == len(errors)
    for item in errors:
        assert item["correct"] is None
        assert item["reason"].startswith("judge error on question")
    for category, accuracy in expected.items():
        score = first["scores"][category]
        if score["judge_errors"]:
            assert score["accuracy"] is None
        else:
            assert score["accuracy"] == pytest.approx(accuracy), category
    # Items judged despite the faults agree with the scenes' outcomes.
    judged = {item["index"]: item["correct"] for item in items if not item["judge_error"]}
    predictions = build.make_ueg_partial(build.ueg_tasks(), stepwise=False)
    tasks = build.ueg_tasks()
    for index, (task, prediction) in enumerate(zip(tasks, predictions, strict=True)):
        if index in judged:
            passes = prediction.scene is not None and build.item_passes(task, prediction.scene)
            assert judged[index] == passes, index

    control(judge_server, fault_rate=0.0)
    before = judge_requests(judge_server)
    rejudged = live_client.post(f"/api/v1/submissions/{submission_id}/rejudge", headers=auth)
    assert rejudged.status_code == 202
    time.sleep(0.5)
    second = wait_scored(live_client, submission_id)

    assert second["judge"]["errors"] == 0
    for category, accuracy in expected.items():
        assert second["scores"][category]["accuracy"] == pytest.approx(accuracy), category
    failed_questions = sum(1 for item in errors for _ in range(item["questions"] or 0))
    assert 0 < judge_requests(judge_server) - before <= failed_questions


def test_rescoring_makes_no_judge_call(
    live_client: TestClient, auth: dict[str, str], judge_server: str
) -> None:
    result = json.loads((BASELINES / "UEG_step.partial.json").read_text())
    response = upload(live_client, auth, "UEG_step", "UEG rescore", zip_of(result), "stepwise")
    submission_id = response.json()["id"]
    first = wait_scored(live_client, submission_id)
    before = judge_requests(judge_server)

    live_client.post(f"/api/v1/submissions/{submission_id}/rejudge", headers=auth)
    deadline = time.monotonic() + 60
    while True:
        with session_scope() as session:
            attempts = session.scalar(
                select(Submission.attempts).where(Submission.id == uuid.UUID(submission_id))
            )
        if (
            attempts == 2
            and live_client.get(f"/api/v1/submissions/{submission_id}").json()["status"] == "scored"
        ):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    second = live_client.get(f"/api/v1/submissions/{submission_id}").json()

    assert judge_requests(judge_server) == before
    assert second["scores"] == first["scores"]
    with session_scope() as session:
        calls = session.scalar(select(func.count()).select_from(JudgeCall))
    assert calls > 0
