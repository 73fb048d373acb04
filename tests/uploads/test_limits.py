"""BodySizeLimit: 413 by Content-Length and by counting a streamed body."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, UploadFile
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.uploads.limits import BodySizeLimit

LIMIT = 1000


class Calls:
    def __init__(self) -> None:
        self.started = 0


def starlette_app(calls: Calls) -> Starlette:
    async def upload(request: Request) -> JSONResponse:
        calls.started += 1
        body = await request.body()
        return JSONResponse({"received": len(body)})

    return Starlette(
        routes=[
            Route("/api/upload", upload, methods=["POST"]),
            Route("/other", upload, methods=["POST"]),
        ]
    )


def limited(calls: Calls) -> BodySizeLimit:
    return BodySizeLimit(starlette_app(calls), max_bytes=LIMIT, path_prefixes=["/api/"])


async def chunks(count: int, size: int, sent: list[int]) -> AsyncIterator[bytes]:
    for _ in range(count):
        sent.append(size)
        yield b"x" * size


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")  # type: ignore[arg-type]


def test_limit_by_content_length() -> None:
    calls = Calls()

    async def run() -> httpx.Response:
        async with client(limited(calls)) as http:
            return await http.post("/api/upload", content=b"x" * (LIMIT + 1))

    response = asyncio.run(run())
    assert response.status_code == 413
    assert response.json()["detail"].startswith("the request body (1001 bytes) is over the")
    assert calls.started == 0


def test_limit_chunked_body_stops_reading() -> None:
    calls = Calls()
    sent: list[int] = []

    async def run() -> httpx.Response:
        async with client(limited(calls)) as http:
            return await http.post("/api/upload", content=chunks(100, 300, sent))

    response = asyncio.run(run())
    assert response.status_code == 413
    assert "over the 1000 bytes upload limit" in response.json()["detail"]
    assert calls.started == 1
    # The fourth chunk passes 1000 bytes; nothing after it is read.
    assert len(sent) == 4


def test_limit_passes_small_and_other_paths() -> None:
    calls = Calls()

    async def run() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with client(limited(calls)) as http:
            within = await http.post("/api/upload", content=chunks(2, 500, []))
            exact = await http.post("/api/upload", content=b"x" * LIMIT)
            other = await http.post("/other", content=b"x" * (LIMIT * 5))
            return within, exact, other

    within, exact, other = asyncio.run(run())
    assert within.json() == {"received": 1000}
    assert exact.json() == {"received": 1000}
    assert other.json() == {"received": 5000}


def test_limit_fastapi_form_gets_413() -> None:
    """FastAPI turns errors while reading a form into 400; the middleware keeps the 413."""
    api = FastAPI()

    @api.post("/api/files")
    async def files(upload: UploadFile) -> dict[str, int]:
        return {"size": len(await upload.read())}

    app = BodySizeLimit(api, max_bytes=LIMIT, path_prefixes=["/api/"])

    async def body() -> AsyncIterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="upload"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        for _ in range(10):
            yield b"x" * 400
        yield b"\r\n--b--\r\n"

    async def run() -> httpx.Response:
        async with client(app) as http:
            return await http.post(
                "/api/files",
                content=body(),
                headers={"content-type": "multipart/form-data; boundary=b"},
            )

    response = asyncio.run(run())
    assert response.status_code == 413
    assert "upload limit" in response.json()["detail"]


@pytest.fixture
def server_url() -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 running the limited Starlette app."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(limited(Calls()), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_limit_on_uvicorn_server(server_url: str) -> None:
    def chunked() -> Iterator[bytes]:
        for _ in range(5):
            yield b"x" * 300

    with httpx.Client(base_url=server_url, timeout=10) as http:
        declared = http.post("/api/upload", content=b"x" * 5000)
        streamed = http.post("/api/upload", content=chunked())
        fine = http.post("/api/upload", content=b"x" * 10)
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "upload limit" in streamed.json()["detail"]
    assert fine.json() == {"received": 10}


def test_stalled_body_gets_408() -> None:
    app = BodySizeLimit(
        starlette_app(Calls()), max_bytes=1000, path_prefixes=["/api/"], idle_timeout_seconds=0.2
    )
    messages: list[dict[str, object]] = []
    first = True

    async def receive() -> dict[str, object]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"abc", "more_body": True}
        await asyncio.sleep(30)  # the client sends nothing more
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/upload",
        "headers": [],
        "query_string": b"",
    }
    started = time.monotonic()
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]

    assert time.monotonic() - started < 5
    assert messages[0]["type"] == "http.response.start"
    assert messages[0]["status"] == 408
    assert b"stalled" in b"".join(m.get("body", b"") for m in messages)  # type: ignore[misc]
