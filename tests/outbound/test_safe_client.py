"""safe_client and read_capped against a real HTTP server that the test starts on 127.0.0.1.

Every TCP connection the client opens goes through httpcore's AnyIOBackend.connect_tcp, which the
``connections`` fixture wraps: it records the address and fails the test for anything other than
127.0.0.1, so a rejected URL can never be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpcore
import httpx
import pytest

from app.outbound.safety import (
    OutboundPolicy,
    ResponseTooLarge,
    UnsafeURL,
    _PinnedNetworkBackend,
    read_capped,
    safe_client,
)

T = TypeVar("T")
METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
SLOW_SECONDS = 3.0


class LocalServer:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                # The timeout tests close the connection before the reply is written.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.route()

            def route(self) -> None:
                if self.path == "/ok":
                    self.reply(200, b"hello")
                elif self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", METADATA_URL)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path.startswith("/big/"):
                    self.reply(200, b"x" * int(self.path.removeprefix("/big/")))
                elif self.path.startswith("/chunked/"):
                    self.send_chunked(int(self.path.removeprefix("/chunked/")))
                elif self.path == "/slow":
                    server.stop.wait(SLOW_SECONDS)
                    self.reply(200, b"late")
                elif self.path == "/drip":
                    self.drip()
                else:
                    self.reply(404, b"not found")

            def reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def send_chunked(self, size: int) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                remaining = size
                while remaining:
                    chunk = b"y" * min(remaining, 4096)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    remaining -= len(chunk)
                self.wfile.write(b"0\r\n\r\n")

            def drip(self) -> None:
                # One byte every 0.1 s, so each read is quick but the whole body takes 3 s.
                self.send_response(200)
                self.send_header("Content-Length", "30")
                self.end_headers()
                for _ in range(30):
                    if server.stop.wait(0.1):
                        return
                    self.wfile.write(b"z")
                    self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    local.thread.start()
    yield local
    local.stop.set()
    local.httpd.shutdown()
    local.httpd.server_close()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the address of each TCP connection, and fail the test on any but 127.0.0.1."""
    opened: list[str] = []
    original = httpcore.AnyIOBackend.connect_tcp

    async def guarded_connect_tcp(
        self: httpcore.AnyIOBackend, host: str, port: int, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        opened.append(host)
        if host != "127.0.0.1":
            pytest.fail(f"the client tried to connect to {host}:{port}")
        return await original(self, host, port, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", guarded_connect_tcp)
    return opened


def fake_resolver(answers: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answers[host])

    return resolve


RESOLVER = fake_resolver(
    {
        "internal.example": ["10.0.0.1"],
        "metadata.example": ["169.254.169.254"],
        "mixed.example": ["93.184.216.34", "10.0.0.1"],
        "loopback.example": ["127.0.0.1"],
    }
)
LOCAL_POLICY = OutboundPolicy(allowlist=("127.0.0.1/32",), timeout_seconds=5.0)


def run(make_coroutine: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make_coroutine()

    return asyncio.run(main())


def test_normal_request_succeeds(server: LocalServer, connections: list[str]) -> None:
    async def request() -> httpx.Response:
        async with safe_client(LOCAL_POLICY, resolve=RESOLVER) as client:
            return await client.get(server.url("/ok"))

    response = run(request)

    assert response.status_code == 200
    assert response.content == b"hello"
    assert connections == ["127.0.0.1"]


def test_redirect_returned_not_followed(server: LocalServer, connections: list[str]) -> None:
    async def request() -> httpx.Response:
        async with safe_client(LOCAL_POLICY, resolve=RESOLVER) as client:
            return await client.get(server.url("/redirect"))

    response = run(request)

    assert response.status_code == 302
    assert response.headers["location"] == METADATA_URL
    assert response.next_request is not None
    assert server.requests == [("/redirect", f"127.0.0.1:{server.port}")]
    assert connections == ["127.0.0.1"]


def test_followed_redirect_to_metadata_rejected(
    server: LocalServer, connections: list[str]
) -> None:
    async def request() -> httpx.Response:
        async with safe_client(LOCAL_POLICY, resolve=RESOLVER) as client:
            return await client.get(server.url("/redirect"), follow_redirects=True)

    with pytest.raises(UnsafeURL, match=re.escape("169.254.169.254 is a cloud metadata address")):
        run(request)

    assert server.requests == [("/redirect", f"127.0.0.1:{server.port}")]
    assert connections == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://internal.example/v1/chat/completions", "10.0.0.1, a private address"),
        ("http://metadata.example/", "169.254.169.254, a cloud metadata address"),
        ("https://mixed.example/v1/images/generations", "10.0.0.1, a private address"),
        ("http://10.0.0.1/", "a private address"),
        ("http://[::1]/", "a loopback address"),
        ("http://2130706433/", "a loopback address"),
        ("http://user:pass@loopback.example/", "user name or password"),
        ("ftp://loopback.example/", "scheme ftp is not allowed"),
    ],
)
def test_unsafe_url_rejected_before_connecting(
    url: str, message: str, connections: list[str]
) -> None:
    async def request() -> httpx.Response:
        async with safe_client(OutboundPolicy(), resolve=RESOLVER) as client:
            return await client.get(url)

    with pytest.raises(UnsafeURL, match=re.escape(message)):
        run(request)

    assert connections == []


def test_allowlist_applies_per_address(server: LocalServer, connections: list[str]) -> None:
    async def request(url: str) -> httpx.Response:
        async with safe_client(LOCAL_POLICY, resolve=RESOLVER) as client:
            return await client.get(url)

    assert run(lambda: request(server.url("/ok"))).status_code == 200
    with pytest.raises(UnsafeURL, match=re.escape("10.0.0.1")):
        run(lambda: request(f"http://10.0.0.1:{server.port}/ok"))

    assert connections == ["127.0.0.1"]


def test_connection_pinned_to_checked_address(server: LocalServer, connections: list[str]) -> None:
    """The name is resolved once, so a changed second DNS answer (DNS rebinding) is never used."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    lookups: list[str] = []

    def rebinding_resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    async def request() -> httpx.Response:
        async with safe_client(LOCAL_POLICY, resolve=rebinding_resolver) as client:
            return await client.get(server.url("/ok", host="rebind.example"))

    response = run(request)

    assert response.status_code == 200
    assert lookups == ["rebind.example"]
    assert connections == ["127.0.0.1"]
    assert server.requests == [("/ok", f"rebind.example:{server.port}")]


def test_backend_checks_host_without_approval(connections: list[str]) -> None:
    """A connection that did not pass through the transport's check is checked by the backend."""
    backend = _PinnedNetworkBackend(OutboundPolicy(), RESOLVER)

    with pytest.raises(UnsafeURL, match=re.escape("10.0.0.1, a private address")):
        run(lambda: backend.connect_tcp("internal.example", 80))

    assert connections == []


def test_transport_uses_pinned_backend() -> None:
    """Guards the replacement of httpx's private connection pool against httpx changes."""
    client = safe_client(OutboundPolicy())
    transport: Any = client._transport

    assert isinstance(transport._pool, httpcore.AsyncConnectionPool)
    assert isinstance(transport._pool._network_backend, _PinnedNetworkBackend)
    assert client.follow_redirects is False
    assert client.trust_env is False
    assert client.timeout == httpx.Timeout(OutboundPolicy().timeout_seconds)


@pytest.mark.parametrize("option", ["transport", "follow_redirects", "proxy", "timeout"])
def test_safe_client_rejects_bypass_options(option: str) -> None:
    with pytest.raises(TypeError, match=option):
        safe_client(OutboundPolicy(), **{option: None})


def test_response_over_limit_raises(server: LocalServer, connections: list[str]) -> None:
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",), max_response_bytes=1000)

    async def request(path: str) -> httpx.Response:
        async with safe_client(policy, resolve=RESOLVER) as client:
            return await client.get(server.url(path))

    assert run(lambda: request("/big/1000")).content == b"x" * 1000
    with pytest.raises(ResponseTooLarge, match="limit of 1000 bytes"):
        run(lambda: request("/big/1001"))
    with pytest.raises(ResponseTooLarge, match="limit of 1000 bytes"):
        run(lambda: request("/chunked/5000"))


def test_read_capped_streams_up_to_limit(server: LocalServer, connections: list[str]) -> None:
    async def read(path: str, max_bytes: int) -> bytes:
        async with (
            safe_client(LOCAL_POLICY, resolve=RESOLVER) as client,
            client.stream("GET", server.url(path)) as response,
        ):
            return await read_capped(response, max_bytes)

    assert run(lambda: read("/chunked/10000", 10000)) == b"y" * 10000
    assert run(lambda: read("/big/10", 10)) == b"x" * 10
    with pytest.raises(ResponseTooLarge, match="limit of 9999 bytes"):
        run(lambda: read("/chunked/10000", 9999))
    with pytest.raises(ResponseTooLarge, match="limit of 9 bytes"):
        run(lambda: read("/big/10", 9))


def test_slow_response_times_out(server: LocalServer, connections: list[str]) -> None:
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",), timeout_seconds=0.5)

    async def request() -> httpx.Response:
        async with safe_client(policy, resolve=RESOLVER) as client:
            return await client.get(server.url("/slow"))

    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        run(request)

    assert time.monotonic() - started < SLOW_SECONDS


def test_slow_body_hits_total_deadline(server: LocalServer, connections: list[str]) -> None:
    """Each byte arrives well within the timeout, but the whole body does not."""
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",), timeout_seconds=0.5)

    async def request() -> bytes:
        async with (
            safe_client(policy, resolve=RESOLVER) as client,
            client.stream("GET", server.url("/drip")) as response,
        ):
            return await read_capped(response, 1000)

    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException, match="did not finish within"):
        run(request)

    assert time.monotonic() - started < SLOW_SECONDS
