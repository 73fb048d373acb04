"""Fixtures: the stand-in judge as a real uvicorn server on 127.0.0.1, and the demo references."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.judging.client import JudgeConfig, JudgeRequest
from app.judging.standin import MODEL_NAME, StandinJudge, create_app

BASELINES = Path(__file__).resolve().parents[2] / "demo" / "baselines"
REFERENCE_FILES = ("UEG_direct.reference.json", "UEG_step.reference.json")


@dataclass(frozen=True)
class ReferenceQuestion:
    request: JudgeRequest
    expected: bool


@dataclass
class StandinServer:
    """A running stand-in: its URLs and the StandinJudge object that serves them."""

    root_url: str
    judge: StandinJudge

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def config(self, **overrides: Any) -> JudgeConfig:
        """Return a JudgeConfig for this server with short test timeouts and backoff."""
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "model": MODEL_NAME,
            "timeout_seconds": 5.0,
            "backoff_base_seconds": 0.05,
            "backoff_max_seconds": 0.2,
        }
        settings.update(overrides)
        return JudgeConfig(**settings)

    def control(self, **settings: Any) -> dict[str, Any]:
        api_key = self.judge.settings.api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        response = httpx.post(f"{self.root_url}/control", json=settings, headers=headers)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.root_url}/stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="session")
def standin_server() -> Iterator[StandinServer]:
    """Start the stand-in in a background thread on a free port of 127.0.0.1."""
    app = create_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the stand-in judge server did not start within 10 s")
        time.sleep(0.02)
    try:
        yield StandinServer(f"http://127.0.0.1:{port}", app.state.judge)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def standin(standin_server: StandinServer) -> StandinServer:
    """The stand-in with default settings, zeroed counters and no request in flight."""
    deadline = time.monotonic() + 5
    while standin_server.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    standin_server.control(
        delay=0,
        fault_rate=0,
        faults=["500", "429", "timeout", "garbage"],
        seed=None,
        max_concurrent=0,
        timeout_fault_seconds=30,
        next_faults=[],
        api_key="",
        reset_stats=True,
    )
    return standin_server


def load_reference_questions(
    file_name: str = "UEG_direct.reference.json",
) -> list[ReferenceQuestion]:
    """Return every question of a UEG reference file, asked about its reference picture."""
    items = json.loads((BASELINES / file_name).read_text(encoding="utf-8"))
    questions = []
    for item in items:
        image = (BASELINES / item["generated_image"]).read_bytes()
        for number, entry in enumerate(item["question_list"]):
            request = JudgeRequest(
                key=f"{item['index']}-{number}",
                image=image,
                media_type="image/png",
                question=entry["question"],
            )
            questions.append(ReferenceQuestion(request, entry["answer"] == "yes"))
    return questions


@pytest.fixture(scope="session")
def reference_questions() -> list[ReferenceQuestion]:
    return load_reference_questions()
