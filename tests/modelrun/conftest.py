"""Fixtures: stand-in model servers on 127.0.0.1, reset to their defaults for each test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from app.modelrun.client import EndpointConfig
from tests.modelrun.standin_model import (
    MODEL_NAME,
    RunningStandin,
    StandinModel,
    serve_in_thread,
)


@dataclass
class StandinServer:
    """A running stand-in: ``base_url`` for clients and ``model`` to configure and inspect it."""

    running: RunningStandin

    @property
    def root_url(self) -> str:
        return self.running.root_url

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def model(self) -> StandinModel:
        return self.running.model

    def config(self, **overrides: Any) -> EndpointConfig:
        """Return an EndpointConfig for this server with short test timeouts and backoff."""
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "model": MODEL_NAME,
            "timeout_seconds": 5.0,
            "backoff_base_seconds": 0.02,
            "backoff_max_seconds": 0.1,
        }
        settings.update(overrides)
        return EndpointConfig(**settings)


def _reset(running: RunningStandin) -> StandinServer:
    # A request stalled by an earlier test ends once its client has disconnected.
    deadline = time.monotonic() + 5
    while running.model.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    running.model.reset()
    return StandinServer(running)


@pytest.fixture(scope="session")
def standin_model_server() -> Iterator[RunningStandin]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture(scope="session")
def other_standin_server() -> Iterator[RunningStandin]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture
def standin_model(standin_model_server: RunningStandin) -> StandinServer:
    """The stand-in model with default settings and zeroed counters."""
    return _reset(standin_model_server)


@pytest.fixture
def other_standin(other_standin_server: RunningStandin) -> StandinServer:
    """A second stand-in on another port, which is another origin for image URLs."""
    return _reset(other_standin_server)
