"""An async judge client for OpenAI-compatible chat completions APIs with image input.

Each request asks one yes/no question about one image, at temperature 0, as the RealUnify
scoring does. Transport errors, timeouts, HTTP 429 and 5xx replies are retried with exponential
backoff and full jitter. Other 4xx replies fail at once. A reply that is neither yes nor no is
asked again ``unreadable_retries`` times and then recorded as a judge error, never guessed.

The client works with any server that implements ``POST {base_url}/chat/completions`` with
``image_url`` content parts that take data URLs, such as vLLM, SGLang, Ollama, OpenAI and the
OpenAI-compatible endpoint of Gemini.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
import structlog
from aiolimiter import AsyncLimiter

from app.logs import get_logger
from app.scoring.yes_no import parse_yes_no

PROMPT_VERSION = "yes-no-1"  # bump when the prompt text changes

SYSTEM_PROMPT = (
    "You judge whether an image matches a statement. You receive one image and one question "
    "about it. Reply with the single word yes or the single word no, and nothing else."
)
ANSWER_INSTRUCTION = "Reply with yes or no only."

SUPPORTED_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
_JSON_HEADERS = {"Content-Type": "application/json"}
# Characters of a reply or an error body kept in a result's error text.
_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class JudgeConfig:
    """Connection, concurrency and retry settings of a judge model endpoint."""

    base_url: str  # e.g. "http://127.0.0.1:8001/v1"; requests go to {base_url}/chat/completions
    model: str
    api_key: str = ""  # sent as "Authorization: Bearer" when non-empty; never logged
    timeout_seconds: float = 60.0
    concurrency: int = 16  # max requests in flight
    requests_per_second: float = 0.0  # 0 means no rate limit
    max_attempts: int = 5  # per question, for transport errors, timeouts, 429 and 5xx
    unreadable_retries: int = 1  # re-asks when the reply is neither yes nor no
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"invalid judge base_url {self.base_url!r}: expected an http:// or https:// URL"
            )
        if not self.model:
            raise ValueError("missing judge model name: set JudgeConfig.model")
        if self.timeout_seconds <= 0:
            raise ValueError(f"invalid timeout_seconds {self.timeout_seconds}: expected > 0")
        if self.concurrency < 1:
            raise ValueError(f"invalid concurrency {self.concurrency}: expected >= 1")
        if self.requests_per_second < 0:
            raise ValueError(
                f"invalid requests_per_second {self.requests_per_second}: expected >= 0 "
                "(0 disables the rate limit)"
            )
        if self.max_attempts < 1:
            raise ValueError(f"invalid max_attempts {self.max_attempts}: expected >= 1")
        if self.unreadable_retries < 0:
            raise ValueError(f"invalid unreadable_retries {self.unreadable_retries}: expected >= 0")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0:
            raise ValueError(
                f"invalid backoff ({self.backoff_base_seconds}, {self.backoff_max_seconds}): "
                "expected seconds >= 0"
            )

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class JudgeRequest:
    """One question about one image. ``key`` is the caller's id, returned with the result."""

    key: str
    image: bytes
    media_type: str  # "image/png", "image/jpeg", "image/webp" or "image/gif"
    question: str


@dataclass(frozen=True)
class JudgeResult:
    """The judge's answer to one request, or the reason it has none."""

    key: str
    answer: bool | None  # None means a judge error, never a guess
    raw_reply: str | None
    error: str | None  # e.g. "timed out after 5 attempts", "HTTP 400: ...", "unreadable reply: ..."
    latency_ms: int  # of the last attempt
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int


def build_messages(question: str, image_data_url: str) -> list[dict[str, Any]]:
    """Build the chat messages that ask ``question`` about the image at ``image_data_url``."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image_data_url}},
                {"type": "text", "text": f"{question}\n{ANSWER_INSTRUCTION}"},
            ],
        },
    ]


def image_data_url(image: bytes, media_type: str) -> str:
    """Encode image bytes as a base64 data URL."""
    return f"data:{media_type};base64,{base64.b64encode(image).decode('ascii')}"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header, in seconds or as an HTTP-date, into seconds from now.

    Returns None for a missing or invalid value. A date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is invalid
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max((moment - current).total_seconds(), 0.0)


@dataclass(frozen=True)
class _Attempt:
    """The outcome of one HTTP request, classified for the retry loop."""

    latency_ms: int
    reply: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status: int | None = None
    retryable_error: str | None = None  # transport error, timeout, 429 or 5xx
    fatal_error: str | None = None  # any other 4xx or an invalid response body
    retry_after: float | None = None


class JudgeClient:
    """Send yes/no questions to a judge model, with bounded concurrency, rate and retries.

    One ``httpx.AsyncClient`` serves all requests, and a semaphore keeps at most
    ``config.concurrency`` of them in flight. Its default transport has connection pools of at
    most 8 connections whose sizes add up to ``config.concurrency``, rounded up to fill the last
    pool. A ``transport`` passed in replaces it, with its own limits. Use
    ``async with JudgeClient(...)`` or call ``aclose()``.
    """

    def __init__(
        self, config: JudgeConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        headers = {"Accept": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(config.timeout_seconds),
            transport=transport or _BalancedTransport(config.concurrency),
        )
        self._semaphore = asyncio.Semaphore(config.concurrency)
        # A bucket of one request per 1/rate seconds spaces requests evenly, with no burst.
        self._limiter = (
            AsyncLimiter(1, 1.0 / config.requests_per_second)
            if config.requests_per_second > 0
            else None
        )
        self._random = random.Random()  # noqa: S311 (backoff jitter, not security)

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def judge_many(
        self,
        requests: Sequence[JudgeRequest],
        on_result: Callable[[JudgeResult], None] | None = None,
    ) -> list[JudgeResult]:
        """Judge every request concurrently and return the results in request order.

        ``on_result`` is called with each result as soon as it is known, in completion order.
        An exception raised by ``on_result`` cancels the remaining requests and propagates.
        """
        tasks = [asyncio.create_task(self._judge_one(request, on_result)) for request in requests]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def judge(self, request: JudgeRequest) -> JudgeResult:
        """Judge a single request."""
        return await self._judge_one(request, None)

    async def _judge_one(
        self, request: JudgeRequest, on_result: Callable[[JudgeResult], None] | None
    ) -> JudgeResult:
        result = await self._run_attempts(request)
        if on_result is not None:
            on_result(result)
        return result

    async def _run_attempts(self, request: JudgeRequest) -> JudgeResult:
        if request.media_type not in SUPPORTED_MEDIA_TYPES:
            error = (
                f"unsupported media type {request.media_type!r}: expected one of "
                f"{sorted(SUPPORTED_MEDIA_TYPES)}"
            )
            _log().warning("judge.failed", key=request.key, attempts=0, status=None, error=error)
            return JudgeResult(request.key, None, None, error, 0, None, None, 0)

        attempts = 0
        retryable_failures = 0
        unreadable_replies = 0
        while True:
            attempts += 1
            attempt = await self._send(request)

            if attempt.fatal_error is not None:
                return self._failed(request, attempt, attempts, attempt.fatal_error)

            if attempt.retryable_error is not None:
                retryable_failures += 1
                if retryable_failures >= self.config.max_attempts:
                    error = f"{attempt.retryable_error} after {attempts} attempts"
                    return self._failed(request, attempt, attempts, error)
                delay = self._backoff_delay(retryable_failures, attempt.retry_after)
                _log().info(
                    "judge.retry",
                    key=request.key,
                    attempt=attempts,
                    status=attempt.status,
                    reason=attempt.retryable_error,
                    delay_seconds=round(delay, 3),
                )
                await asyncio.sleep(delay)
                continue

            reply = attempt.reply or ""
            answer = parse_yes_no(reply)
            if answer is not None:
                return JudgeResult(
                    key=request.key,
                    answer=answer,
                    raw_reply=reply,
                    error=None,
                    latency_ms=attempt.latency_ms,
                    prompt_tokens=attempt.prompt_tokens,
                    completion_tokens=attempt.completion_tokens,
                    attempts=attempts,
                )
            unreadable_replies += 1
            reason = f"unreadable reply: {reply[:_EXCERPT_CHARS]!r}"
            if unreadable_replies > self.config.unreadable_retries:
                return self._failed(request, attempt, attempts, reason)
            _log().info(
                "judge.retry",
                key=request.key,
                attempt=attempts,
                status=attempt.status,
                reason=reason,
                delay_seconds=0.0,
            )

    def _failed(
        self, request: JudgeRequest, attempt: _Attempt, attempts: int, error: str
    ) -> JudgeResult:
        _log().warning(
            "judge.failed", key=request.key, attempts=attempts, status=attempt.status, error=error
        )
        return JudgeResult(
            key=request.key,
            answer=None,
            raw_reply=attempt.reply,
            error=error,
            latency_ms=attempt.latency_ms,
            prompt_tokens=attempt.prompt_tokens,
            completion_tokens=attempt.completion_tokens,
            attempts=attempts,
        )

    def _backoff_delay(self, failures: int, retry_after: float | None) -> float:
        """Return the wait before the next attempt: Retry-After if given, else full jitter."""
        cap = self.config.backoff_max_seconds
        if retry_after is not None:
            return min(retry_after, cap)
        ceiling = min(cap, self.config.backoff_base_seconds * 2 ** (failures - 1))
        return self._random.uniform(0.0, ceiling)

    def _request_body(self, request: JudgeRequest) -> bytes:
        payload = {
            "model": self.config.model,
            "messages": build_messages(
                request.question, image_data_url(request.image, request.media_type)
            ),
            "temperature": 0,
            "stream": False,
        }
        return json.dumps(payload, separators=(",", ":")).encode("utf-8")

    async def _send(self, request: JudgeRequest) -> _Attempt:
        """Send one request inside the concurrency and rate limits and classify the outcome.

        The body is encoded only once a slot is free, so a large batch never keeps all of its
        base64 images in memory at once.
        """
        async with self._semaphore:
            if self._limiter is not None:
                await self._limiter.acquire()
            body = self._request_body(request)
            started = time.perf_counter()
            try:
                response = await self._http.post(
                    self.config.url, content=body, headers=_JSON_HEADERS
                )
            except httpx.TimeoutException:
                return _Attempt(latency_ms=_elapsed_ms(started), retryable_error="timed out")
            except httpx.TransportError as exc:
                return _Attempt(
                    latency_ms=_elapsed_ms(started),
                    retryable_error=f"connection error ({type(exc).__name__})",
                )
            latency_ms = _elapsed_ms(started)
        return self._classify(response, latency_ms)

    def _classify(self, response: httpx.Response, latency_ms: int) -> _Attempt:
        status = response.status_code
        if status == 429 or status >= 500:
            return _Attempt(
                latency_ms=latency_ms,
                status=status,
                retryable_error=f"HTTP {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if not 200 <= status < 300:
            excerpt = self._redact(" ".join(response.text.split())[:_EXCERPT_CHARS])
            return _Attempt(
                latency_ms=latency_ms, status=status, fatal_error=f"HTTP {status}: {excerpt}"
            )
        try:
            body = response.json()
            reply = _reply_text(body)
        except (ValueError, KeyError, IndexError, TypeError):
            excerpt = self._redact(" ".join(response.text.split())[:_EXCERPT_CHARS])
            return _Attempt(
                latency_ms=latency_ms,
                status=status,
                fatal_error=(
                    f"invalid chat completion body from HTTP {status}: {excerpt!r}; "
                    "check that base_url points to an OpenAI-compatible /v1 endpoint"
                ),
            )
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return _Attempt(
            latency_ms=latency_ms,
            status=status,
            reply=reply,
            prompt_tokens=_optional_int(usage.get("prompt_tokens")),
            completion_tokens=_optional_int(usage.get("completion_tokens")),
        )

    def _redact(self, text: str) -> str:
        """Remove the API key from text that a server sent back, in case it echoes the key."""
        if self.config.api_key:
            return text.replace(self.config.api_key, "[redacted]")
        return text


class _BalancedTransport(httpx.AsyncBaseTransport):
    """An HTTP transport that spreads requests over several small connection pools.

    The work of the httpcore connection pool (version 1.0.9) per request grows with the square of
    its connection count, which costs more CPU than the requests themselves at 64 connections.
    Pools of at most ``POOL_SIZE`` connections keep that cost small. Each request goes to the
    pool with the fewest requests in flight, so while the client's semaphore admits no more
    than ``connections`` requests, a request never waits for a connection.
    """

    POOL_SIZE = 8

    def __init__(self, connections: int) -> None:
        pool_count = -(-connections // self.POOL_SIZE)
        per_pool = -(-connections // pool_count)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        # One SSL context for all pools: each one takes tens of milliseconds to create.
        ssl_context = httpx.create_ssl_context()
        self._pools = [
            httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits) for _ in range(pool_count)
        ]
        self._in_flight = [0] * pool_count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight[index] -= 1

        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        # The connection stays busy until the caller has read or closed the response body.
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body stream that calls ``release`` once when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._release()


def _log() -> structlog.stdlib.BoundLogger:
    # A fresh logger per event keeps the current structlog configuration in effect, so
    # structlog.testing.capture_logs() captures these events even after another logger was cached.
    return get_logger(__name__)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _reply_text(body: Any) -> str:
    """Return the text of the first choice of a chat completion body.

    The content may be a string or a list of content parts, and is empty when missing.
    Raises KeyError, IndexError or TypeError when the body is not a chat completion.
    """
    message = body["choices"][0]["message"]
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    raise TypeError(f"unexpected message content type {type(content).__name__}")


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
