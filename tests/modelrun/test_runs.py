"""Runs against a registered endpoint: all four flows, equality with uploads, kills, refusals."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import time
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from app.config import get_settings
from app.db import get_engine, session_scope
from app.models import ModelCall, ModelEndpoint
from app.uploads.images import stored_image_path
from tests.builders import create_user_with_token, demo_file
from tests.conftest import PROJECT_ROOT, start_worker
from tests.modelrun.standin_model import demo_chat_replies, demo_scenes

API_KEY = "sk-test-SECRET-4242-abcdef"


@pytest.fixture
def auth(committed: None) -> dict[str, str]:
    with session_scope() as session:
        token = create_user_with_token(session, "runner@example.org")
    return {"Authorization": f"Bearer {token}"}


def answers(wrong_every: int = 4) -> dict[str, str]:
    """Chat replies for the GEU questions: right, except every ``wrong_every``-th item."""
    replies = {}
    for stem in ("GEU_direct", "GEU_step"):
        for number, item in enumerate(demo_file(stem)):
            letter = item["answer"]
            if number % wrong_every == 0:
                letter = "A" if letter != "A" else "B"
            replies[item["evaluation_prompt"]] = f"The answer is {letter}."
    return replies


def configure(standin: Any, delay: float = 0.0) -> None:
    model = standin.model
    replies = {**demo_chat_replies(), **answers()}
    model.chat_reply = lambda prompt: replies.get(prompt, "I do not know.")
    model.scenes = demo_scenes()
    model.api_key = API_KEY
    model.delay = delay


def register(
    client: TestClient, auth: dict[str, str], standin: Any, **limits: Any
) -> dict[str, Any]:
    body = {
        "model_name": "Endpoint Model",
        "model_kind": "unified",
        "chat": {"base_url": standin.base_url, "model": standin.model.model, "api_key": API_KEY},
        "images": {
            "base_url": standin.base_url,
            "model": standin.model.model,
            "api_key": API_KEY,
            "supports_edit": True,
        },
        **limits,
    }
    response = client.post("/api/v1/endpoints", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_run(
    client: TestClient, auth: dict[str, str], run_id: str, seconds: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}", headers=auth).json()
        submissions = body["submissions"]
        if (
            body["status"] == "completed"
            and submissions
            and all(s["status"] == "scored" for s in submissions)
        ):
            return body
        assert body["status"] not in ("failed", "cancelled"), body
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish in {seconds} s: {body}")


@pytest.mark.usefixtures("judge_server", "celery_worker_process")
def test_four_flows_score_like_an_upload(
    live_client: TestClient, auth: dict[str, str], standin_model: Any
) -> None:
    configure(standin_model)
    endpoint = register(live_client, auth, standin_model, concurrency=4)

    check = live_client.post(f"/api/v1/endpoints/{endpoint['id']}/check", headers=auth).json()
    assert check == {"ok": True, "problems": []}
    started = live_client.post(f"/api/v1/endpoints/{endpoint['id']}/runs", headers=auth)
    assert started.status_code == 202, started.text
    run = wait_run(live_client, auth, started.json()["id"])

    assert sorted((s["axis"], s["protocol"]) for s in run["submissions"]) == [
        ("GEU", "direct"),
        ("GEU", "stepwise"),
        ("UEG", "direct"),
        ("UEG", "stepwise"),
    ]
    assert run["progress"]["done"] == run["progress"]["total"]
    assert all(h == f"Bearer {API_KEY}" for h in standin_model.model.authorizations if h)
    worker_log = (PROJECT_ROOT / ".pytest-worker.log").read_text(errors="replace")
    assert "model_run.completed" in worker_log
    assert API_KEY not in worker_log

    # Upload the same outputs as prediction files: the scores must be equal.
    for submitted in run["submissions"]:
        served = live_client.get(f"/api/v1/submissions/{submitted['id']}").json()
        upload = upload_same_outputs(live_client, auth, started.json()["id"], submitted)
        assert upload["scores"] == served["scores"], submitted
        assert served["run_by_service"] is True


def upload_same_outputs(
    client: TestClient, auth: dict[str, str], run_id: str, submitted: dict[str, Any]
) -> dict[str, Any]:
    stem = {
        ("GEU", "direct"): "GEU_direct",
        ("GEU", "stepwise"): "GEU_step",
        ("UEG", "direct"): "UEG_direct",
        ("UEG", "stepwise"): "UEG_step",
    }[(submitted["axis"], submitted["protocol"])]
    items = demo_file(stem)
    with session_scope() as session:
        calls = {
            (c.item_id, c.step): c
            for c in session.scalars(select(ModelCall).where(ModelCall.run_id == run_id))
        }
        index_of = dict(
            session.execute(
                text(
                    "SELECT id, item_key FROM benchmark_items "
                    "WHERE axis = :axis AND protocol = :protocol AND benchmark_id = "
                    "(SELECT id FROM benchmarks WHERE is_current)"
                ),
                {"axis": submitted["axis"], "protocol": submitted["protocol"]},
            ).all()
        )
    by_index = {int(key): item_id for item_id, key in index_of.items()}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for item in items:
            item_id = by_index[item["index"]]
            if submitted["axis"] == "GEU":
                item["response"] = calls[(item_id, "answer")].output_text
                if stem == "GEU_step":
                    item["edit_image"] = f"edits/{item['index']}.png"
            else:
                call = calls[(item_id, "generate")]
                path = stored_image_path(
                    get_settings().storage_dir, call.output_image_sha256, call.output_media_type
                )
                bundle.write(path, f"images/{item['index']}.png")
                item["generated_image"] = f"images/{item['index']}.png"
                if stem == "UEG_step":
                    item["response"] = calls[(item_id, "rewrite")].output_text
    files = [("predictions", (f"{stem}.json", json.dumps(items).encode()))]
    if submitted["axis"] == "UEG":
        files.append(("images", ("images.zip", archive.getvalue())))
    response = client.post(
        "/api/v1/submissions",
        headers=auth,
        files=files,
        data={
            "model_name": "Uploaded Same",
            "model_kind": "unified",
            "protocol": submitted["protocol"],
            "axis": submitted["axis"],
        },
    )
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/api/v1/submissions/{response.json()['id']}").json()
        if body["status"] == "scored":
            return body
        time.sleep(0.2)
    raise AssertionError("the upload was not scored")


def test_killed_worker_resumes_without_repeating(
    live_client: TestClient, auth: dict[str, str], standin_model: Any
) -> None:
    configure(standin_model, delay=0.25)
    endpoint = register(live_client, auth, standin_model, concurrency=1)
    queue = f"kill-{os.getpid()}-{time.monotonic_ns()}"
    log_path = PROJECT_ROOT / f".pytest-{queue}.log"
    env = {**os.environ, "REALUNIFY_TASK_QUEUE": queue}

    first = start_worker(queue, log_path, env)
    try:
        # The run is created without the API, so its task goes only to this test's queue.
        from app.benchmarks.service import get_current_benchmark
        from app.modelrun.service import get_endpoint, start_run
        from app.models import User
        from workers.celery_app import celery_app
        from workers.tasks import EXECUTE_MODEL_RUN

        with session_scope() as session:
            user = session.scalar(select(User).where(User.email == "runner@example.org"))
            benchmark = get_current_benchmark(session, get_settings().benchmark_name)
            run_id = str(
                start_run(
                    session,
                    user,
                    get_endpoint(session, user, endpoint["id"]),
                    benchmark.id,
                    ["GEU_direct"],
                ).id
            )
        celery_app.send_task(EXECUTE_MODEL_RUN, args=[run_id], queue=queue)
        deadline = time.monotonic() + 60
        while len(standin_model.model.requests) < 6:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = start_worker(queue, log_path, env, ready_lines=2)
        try:
            run = wait_run(live_client, auth, run_id)
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        log_path.unlink(missing_ok=True)

    assert run["progress"]["done"] == 20
    # Several items share a question text, so an item is its question and its image.
    counts: dict[tuple[str, str], int] = {}
    for request in standin_model.model.requests:
        key = (request.prompt, hashlib.sha256(request.image or b"").hexdigest())
        counts[key] = counts.get(key, 0) + 1
    repeated = [prompt for prompt, count in counts.items() if count > 1]
    assert len(repeated) <= 1, repeated
    assert all(count <= 2 for count in counts.values())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:9/v1", "loopback"),
        ("http://10.0.0.1/v1", "private"),
        ("http://169.254.169.254/latest", "metadata"),
        ("http://[::1]:9/v1", "loopback"),
        ("http://internal.example/v1", "private"),
        ("http://metadata.example/v1", "metadata"),
    ],
)
def test_unsafe_endpoint_is_refused(
    client: TestClient, token: str, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    import socket

    monkeypatch.setattr(get_settings(), "outbound_allowlist", "")
    real = socket.getaddrinfo
    fake = {"internal.example": "10.0.0.1", "metadata.example": "169.254.169.254"}

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        if host in fake:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (fake[host], 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    response = client.post(
        "/api/v1/endpoints",
        headers={"Authorization": f"Bearer {token}"},
        json={"model_name": "Unsafe", "chat": {"base_url": url, "model": "m"}},
    )

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("chat.base_url:")
    assert reason in detail
    assert "REALUNIFY_OUTBOUND_ALLOWLIST" in detail


def test_key_never_shown_or_stored_plain(
    client: TestClient, token: str, db_session: Any, standin_model: Any
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    endpoint = register(client, auth, standin_model)

    pages = [
        json.dumps(endpoint),
        client.get(f"/api/v1/endpoints/{endpoint['id']}", headers=auth).text,
        client.get("/api/v1/endpoints", headers=auth).text,
    ]
    stored = db_session.scalar(select(ModelEndpoint).where(ModelEndpoint.id == endpoint["id"]))

    for page in pages:
        assert API_KEY not in page
    assert endpoint["chat"]["api_key"] == "set"
    assert API_KEY not in (stored.chat_api_key or "")
    assert API_KEY not in (stored.images_api_key or "")
    with get_engine().connect() as connection:
        dump = " ".join(
            str(row) for row in connection.execute(text("SELECT * FROM model_endpoints"))
        )
    assert API_KEY not in dump


def test_key_from_form_never_shown(client: TestClient, db_session: Any, standin_model: Any) -> None:
    from tests.api.test_accounts import csrf_of, sign_up

    sign_up(client, "form-keys@example.org")
    page = client.get("/endpoints").text
    response = client.post(
        "/endpoints",
        data={
            "csrf": csrf_of(page),
            "model_name": "Form Endpoint Model",
            "model_kind": "unified",
            "chat_base_url": standin_model.base_url,
            "chat_model": standin_model.model.model,
            "chat_api_key": API_KEY,
            "images_base_url": standin_model.base_url,
            "images_model": standin_model.model.model,
            "images_api_key": API_KEY,
            "supports_edit": "1",
            "concurrency": "2",
            "requests_per_minute": "0",
            "timeout_seconds": "30",
        },
    )

    assert response.status_code == 200, response.text
    assert "/endpoints/" in str(response.url)
    pages = [response.text, client.get("/endpoints").text, client.get(str(response.url)).text]
    for shown in pages:
        assert API_KEY not in shown
        assert API_KEY[-6:] not in shown
    assert "API key set" in pages[2]
    with get_engine().connect() as connection:
        dump = " ".join(
            str(row) for row in connection.execute(text("SELECT * FROM model_endpoints"))
        )
    assert API_KEY not in dump


def test_form_rejects_private_address(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.api.test_accounts import csrf_of, sign_up

    monkeypatch.setattr(get_settings(), "outbound_allowlist", "")
    sign_up(client, "form-unsafe@example.org")
    response = client.post(
        "/endpoints",
        data={
            "csrf": csrf_of(client.get("/endpoints").text),
            "model_name": "Unsafe Form",
            "model_kind": "unified",
            "chat_base_url": "http://10.0.0.1/v1",
            "chat_model": "m",
            "chat_api_key": API_KEY,
        },
    )

    assert response.status_code == 422
    assert "chat.base_url: host 10.0.0.1" in response.text
    assert API_KEY not in response.text
