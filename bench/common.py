"""Helpers the benchmark scripts share: ports, the service's CLI and waiting for a server."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run ``realunify-board`` from the project venv; exit with its output when it fails."""
    completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [str(VENV_BIN / "realunify-board"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(
            f"realunify-board {' '.join(args)} failed ({completed.returncode}):\n"
            f"{completed.stdout}{completed.stderr}"
        )
    return completed.stdout


def wait_for_server(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the service at ``url`` serves its OpenAPI schema; exit if it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited with code {process.returncode} before it served")
        try:
            if httpx.get(f"{url}/api/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"uvicorn did not respond at {url} within {timeout:.0f} s")
