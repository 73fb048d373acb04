"""Fixtures for the browser tests: committed demo rows, the real app as a subprocess, Chromium.

The app runs as ``uvicorn app.main:app`` in its own process, so the rows it shows are committed
here and deleted again when the module ends. The browser is Debian's Chromium driven by
Playwright; a page may only reach 127.0.0.1, and every other request is aborted and recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.accounts.service import create_user
from app.benchmarks.service import get_current_benchmark
from app.config import get_settings
from app.db import get_engine, session_scope
from app.models import User, utc_now
from app.scoring.service import score_submission
from app.submissions.service import (
    SubmissionForm,
    check_form,
    create_submission,
    validate_for_benchmark,
)
from tests.builders import answered, as_json
from tests.conftest import PROJECT_ROOT, USER_TABLES, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
LOCAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class DemoModel:
    name: str
    slug: str
    wrong_direct: int
    wrong_stepwise: int


# GEU models with both protocols. Each gets a different number of wrong responses, so their
# scores differ.
DEMO_MODELS = (
    DemoModel("Browser Demo Alpha", "browser-demo-alpha", 2, 1),
    DemoModel("Browser Demo Beta", "browser-demo-beta", 9, 4),
    DemoModel("Browser Demo Gamma", "browser-demo-gamma", 15, 12),
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives Debian's Chromium against the app in a subprocess"
    )


def _answers(stem: str, wrong: int) -> bytes:
    """Return the demo file with correct responses, except a wrong letter on the first items."""
    items = answered(stem)
    for item in items[:wrong]:
        item["response"] = "A" if item["answer"] != "A" else "B"
    return as_json(items)


def _submit_scored(session: Session, user: User, name: str, protocol: str, wrong: int) -> None:
    """Validate, store and score one GEU upload in the session, as the worker would."""
    stem = "GEU_direct" if protocol == "direct" else "GEU_step"
    settings = get_settings()
    benchmark = get_current_benchmark(session, settings.benchmark_name)
    form = check_form(SubmissionForm(name, "unified", protocol, "GEU"))
    data = _answers(stem, wrong)
    upload = validate_for_benchmark(session, benchmark, form, data, f"{stem}.json", 50)
    submission = create_submission(session, user, benchmark, form, upload, data)
    score_submission(session, submission.id, settings)
    submission.status = "scored"
    submission.finished_at = utc_now()
    session.flush()


def _commit_demo_models() -> None:
    """Score the demo models' GEU uploads, both protocols, and commit them."""
    with session_scope() as session:
        user = create_user(session, "browser-tests@example.org")
        for model in DEMO_MODELS:
            _submit_scored(session, user, model.name, "direct", model.wrong_direct)
            _submit_scored(session, user, model.name, "stepwise", model.wrong_stepwise)


def _delete_committed_rows() -> None:
    """Delete the committed rows as the `committed` fixture does, keeping the reference rows."""
    with get_engine().begin() as connection:
        for table in USER_TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(text("DELETE FROM models WHERE NOT is_reference"))


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base_url}/about", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                raise RuntimeError(
                    f"the app failed to start at {base_url}; its log follows:\n"
                    f"{log_path.read_text()}"
                ) from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    """Return Chromium's path. Fail (not skip) when it is missing: every run includes these."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}; install it with "
            "`apt-get install -y chromium` (Debian's package; `playwright install` is not used)",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def app_server(
    chromium_path: Path, database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Commit the demo models and serve the app with uvicorn, then yield its base URL."""
    port = free_port()
    base_url = f"http://{LOCAL_HOST}:{port}"
    log_path = tmp_path_factory.mktemp("browser-app") / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "app.main:app"]
    command += ["--host", LOCAL_HOST, "--port", str(port)]
    try:
        _commit_demo_models()
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
            )
            try:
                _wait_until_up(process, base_url, log_path)
                yield base_url
            finally:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    finally:
        _delete_committed_rows()


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Browser]:
    """Launch one headless Chromium for the module."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Traffic:
    """Requests of a page: URLs beyond 127.0.0.1 that were aborted, and the responses."""

    blocked: list[str] = field(default_factory=list)
    responses: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def page(browser: Browser, app_server: str, traffic: Traffic) -> Iterator[Page]:
    """Open a page whose requests to any host but 127.0.0.1 are aborted and recorded."""

    def only_local(route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname == LOCAL_HOST:
            route.continue_()
        else:
            traffic.blocked.append(url)
            route.abort("blockedbyclient")

    context = browser.new_context(
        base_url=app_server, viewport={"width": 1600, "height": 1000}, accept_downloads=True
    )
    context.route("**/*", only_local)
    opened = context.new_page()
    opened.on(
        "response", lambda response: traffic.responses.append((response.url, response.status))
    )
    try:
        yield opened
    finally:
        context.close()
    assert traffic.blocked == [], f"the page tried to leave {LOCAL_HOST}: {traffic.blocked}"


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
