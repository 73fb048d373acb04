"""An async client for the OpenAI-compatible endpoints of a model under evaluation.

The RealUnify flows need three kinds of call: a chat completion with an optional input image
(GEU answers and UEG prompt rewrites), an image generation (UEG) and an image edit (GEU
stepwise). ``ModelClient`` makes them against a chat endpoint and an images endpoint, which may
be the same server.

Timeouts, connection errors, HTTP 429 and 5xx replies are retried with exponential backoff and
full jitter, and a Retry-After header sets the wait when present. Other replies outside 2xx fail
at once. Every response is validated: a body that is not the expected JSON, an image that
Pillow cannot decode, or a body over ``max_response_bytes`` gives a ``CallResult`` with an
``error`` text, never an exception. The API key is sent only as a Bearer header to the
endpoint's own origin, is never logged, and is replaced by ``[redacted]`` in error texts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import structlog
from aiolimiter import AsyncLimiter
from PIL import Image

from app.judging.client import SUPPORTED_MEDIA_TYPES, image_data_url, parse_retry_after
from app.logs import get_logger

CHECK_CHAT_PROMPT = "Reply with OK."
CHECK_IMAGE_PROMPT = "a red circle"
IMAGE_SIZE = "1024x1024"
# Characters of an error body kept in an error text.
_EXCERPT_CHARS = 200
# Bytes of a non-2xx body read for that excerpt; the rest is discarded unread.
_ERROR_BODY_BYTES = 16 * 1024
# Images larger than this are rejected before decoding, so a small file cannot expand into
# gigabytes of pixels. 50 megapixels is far above the 1024 x 1024 images that the flows request.
MAX_IMAGE_PIXELS = 50_000_000
_PILLOW_MEDIA_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}


@dataclass(frozen=True)
class EndpointConfig:
    """Connection, concurrency and retry settings of one OpenAI-compatible endpoint."""

    base_url: str  # e.g. "http://127.0.0.1:9000/v1"; routes are appended to it
    model: str
    # Sent as "Authorization: Bearer" when non-empty. Left out of repr so that it stays out of
    # tracebacks and logged objects.
    api_key: str = field(default="", repr=False)
    timeout_seconds: float = 120.0  # per attempt, from sending the request to the last byte
    concurrency: int = 4  # max requests in flight to this endpoint
    requests_per_minute: float = 0.0  # 0 means no rate limit
    max_attempts: int = 4  # per call, for timeouts, connection errors, 429 and 5xx
    max_response_bytes: int = 64 * 1024 * 1024  # after content decoding
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0  # also caps the wait that a Retry-After header requests

    def __post_init__(self) -> None:
        url = httpx.URL(self.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(
                f"invalid base_url {_display_url(self.base_url)!r}: expected an http:// or "
                "https:// URL"
            )
        if not self.model:
            raise ValueError("missing model name: set EndpointConfig.model")
        if not self.timeout_seconds > 0:
            raise ValueError(f"invalid timeout_seconds {self.timeout_seconds}: expected > 0")
        if self.concurrency < 1:
            raise ValueError(f"invalid concurrency {self.concurrency}: expected >= 1")
        if not self.requests_per_minute >= 0:
            raise ValueError(
                f"invalid requests_per_minute {self.requests_per_minute}: expected >= 0 "
                "(0 disables the rate limit)"
            )
        if self.max_attempts < 1:
            raise ValueError(f"invalid max_attempts {self.max_attempts}: expected >= 1")
        if self.max_response_bytes < 1:
            raise ValueError(f"invalid max_response_bytes {self.max_response_bytes}: expected >= 1")
        if not (self.backoff_base_seconds >= 0 and self.backoff_max_seconds >= 0):
            raise ValueError(
                f"invalid backoff ({self.backoff_base_seconds}, {self.backoff_max_seconds}): "
                "expected seconds >= 0"
            )

    def url(self, route: str) -> str:
        return self.base_url.rstrip("/") + route

    @property
    def display_url(self) -> str:
        """The base URL without user info, query or fragment, for logs and error texts."""
        return _display_url(self.base_url)


@dataclass(frozen=True)
class CallResult:
    """The outcome of one call: a reply text or an image, or the reason there is none."""

    text: str | None  # chat reply
    image: bytes | None  # generated or edited image, as the server encoded it
    media_type: str | None  # of ``image``, detected from its bytes
    error: str | None  # None on success
    latency_ms: int  # of the last attempt, including the download of an image given by URL
    attempts: int  # HTTP requests made, including image downloads and their retries


def default_client_factory(config: EndpointConfig) -> httpx.AsyncClient:
    """Build a plain client that follows no redirects and uses the endpoint's timeout."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(config.timeout_seconds),
        limits=httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        ),
    )


@dataclass(frozen=True)
class _Attempt:
    """The outcome of one HTTP request, classified for the retry loop."""

    latency_ms: int
    status: int | None = None
    body: bytes | None = None  # the whole body of a 2xx response
    retryable_error: str | None = None  # timeout, connection error, 429 or 5xx
    fatal_error: str | None = None  # any other status, or a body over the size limit
    retry_after: float | None = None
    excerpt: str = ""  # of an error body, kept out of logs; the key is already scrubbed

    @property
    def reason(self) -> str | None:
        return self.fatal_error or self.retryable_error


@dataclass(frozen=True)
class _Outcome:
    """The last attempt of a request with retries, and how many attempts were made."""

    attempt: _Attempt
    attempts: int

    @property
    def error(self) -> str | None:
        attempt = self.attempt
        detail = f": {attempt.excerpt}" if attempt.excerpt else ""
        if attempt.fatal_error is not None:
            return attempt.fatal_error + detail
        if attempt.retryable_error is not None:
            plural = "attempt" if self.attempts == 1 else "attempts"
            return f"{attempt.retryable_error} after {self.attempts} {plural}{detail}"
        return None


@dataclass(frozen=True)
class _Image:
    data: bytes
    media_type: str


class _InvalidResponse(Exception):
    """A 2xx response whose body is not what the route returns."""


class _Endpoint:
    """One configured endpoint: its HTTP client, concurrency slots and rate limiter."""

    def __init__(
        self,
        name: str,
        config: EndpointConfig,
        client_factory: Callable[[EndpointConfig], httpx.AsyncClient],
    ) -> None:
        self.name = name
        self.config = config
        self.http = client_factory(config)
        self.semaphore = asyncio.Semaphore(config.concurrency)
        # A bucket of one request per 60/rate seconds spaces requests evenly, with no burst.
        self.limiter = (
            AsyncLimiter(1, 60.0 / config.requests_per_minute)
            if config.requests_per_minute > 0
            else None
        )
        base = httpx.URL(config.base_url)
        self.host = base.netloc.decode("ascii")
        self._origin = (base.scheme, base.host, base.port)

    def headers_for(self, url: httpx.URL) -> dict[str, str]:
        """Return the Authorization header for a URL of this endpoint's origin, else nothing.

        An image URL may point at another host, such as a storage bucket, which must not
        receive the key.
        """
        if self.config.api_key and (url.scheme, url.host, url.port) == self._origin:
            return {"Authorization": f"Bearer {self.config.api_key}"}
        return {}

    def scrub(self, text: str) -> str:
        """Replace the API key in a text, such as an error body that echoes it."""
        if self.config.api_key:
            return text.replace(self.config.api_key, "[redacted]")
        return text


class ModelClient:
    """Call a model's chat, image generation and image edit endpoints with retries and limits.

    ``client_factory`` builds the ``httpx.AsyncClient`` of each endpoint. The service passes one
    that enforces its outbound policy, and image URLs returned by the images endpoint are
    downloaded through that endpoint's client too. The default factory is
    ``default_client_factory``. Each endpoint has its own semaphore of ``concurrency`` slots
    and its own rate limiter. The limiter counts the API requests, not image downloads. Use
    ``async with ModelClient(...)`` or call ``aclose()``.
    """

    def __init__(
        self,
        chat: EndpointConfig | None,
        images: EndpointConfig | None,
        client_factory: Callable[[EndpointConfig], httpx.AsyncClient] | None = None,
    ) -> None:
        factory = client_factory or default_client_factory
        self._chat = _Endpoint("chat", chat, factory) if chat is not None else None
        self._images = _Endpoint("images", images, factory) if images is not None else None
        self._random = random.Random()  # noqa: S311 (backoff jitter, not security)

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for endpoint in (self._chat, self._images):
            if endpoint is not None:
                await endpoint.http.aclose()

    async def chat(
        self, prompt: str, image: bytes | None = None, media_type: str = "image/png"
    ) -> CallResult:
        """Send one user message with the prompt and optionally an image, at temperature 0.

        Returns the text of the first choice. An empty reply is a success with text "".
        """
        return await self._chat_call(prompt, image, media_type, self._max_attempts(self._chat))

    async def generate_image(self, prompt: str) -> CallResult:
        """Generate one 1024 x 1024 image from a prompt."""
        return await self._generate_call(prompt, self._max_attempts(self._images))

    async def edit_image(self, image: bytes, media_type: str, prompt: str) -> CallResult:
        """Edit an image as the prompt instructs and return the edited image."""
        endpoint = self._images
        if endpoint is None:
            return _unconfigured("images")
        if media_type not in SUPPORTED_MEDIA_TYPES:
            return _failed_early(endpoint, "/images/edits", _unsupported(media_type))
        config = endpoint.config

        def request() -> dict[str, Any]:
            return {
                "data": {
                    "model": config.model,
                    "prompt": prompt,
                    "n": "1",
                    "response_format": "b64_json",
                },
                "files": {"image": ("image.png", image, media_type)},
            }

        return await self._image_call(endpoint, "/images/edits", request, config.max_attempts)

    async def check(self) -> list[str]:
        """Send one small request to each configured endpoint, without retries.

        Returns one problem text per failed endpoint, naming the endpoint, its model and the
        error; an empty list means that every endpoint worked.
        """
        checks: list[tuple[_Endpoint, asyncio.Task[CallResult]]] = []
        if self._chat is not None:
            task = asyncio.create_task(self._chat_call(CHECK_CHAT_PROMPT, None, "image/png", 1))
            checks.append((self._chat, task))
        if self._images is not None:
            checks.append(
                (self._images, asyncio.create_task(self._generate_call(CHECK_IMAGE_PROMPT, 1)))
            )
        problems = []
        for endpoint, task in checks:
            result = await task
            if result.error is not None:
                problems.append(
                    f"{endpoint.name} endpoint {endpoint.config.display_url} "
                    f"(model {endpoint.config.model!r}): {result.error}"
                )
        return problems

    # Calls

    async def _chat_call(
        self, prompt: str, image: bytes | None, media_type: str, max_attempts: int
    ) -> CallResult:
        endpoint = self._chat
        if endpoint is None:
            return _unconfigured("chat")
        route = "/chat/completions"
        if image is not None and media_type not in SUPPORTED_MEDIA_TYPES:
            return _failed_early(endpoint, route, _unsupported(media_type))
        config = endpoint.config

        def request() -> dict[str, Any]:
            # Built per attempt and dropped after it, so a waiting call keeps no base64 copy.
            content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
            if image is not None:
                content.append(
                    {"type": "image_url", "image_url": {"url": image_data_url(image, media_type)}}
                )
            payload = {
                "model": config.model,
                "messages": [{"role": "user", "content": content}],
                "temperature": 0,
                "stream": False,
            }
            return {
                "content": json.dumps(payload, separators=(",", ":")).encode("utf-8"),
                "headers": {"Content-Type": "application/json"},
            }

        outcome = await self._request(endpoint, "POST", route, request, max_attempts)
        attempt = outcome.attempt
        if outcome.error is not None or attempt.body is None:
            return self._failed(
                endpoint, route, outcome, outcome.error or "empty response", attempt.reason
            )
        try:
            text = _chat_reply_text(attempt.body)
        except _InvalidResponse as exc:
            error = self._invalid(endpoint, attempt, exc)
            return self._failed(endpoint, route, outcome, error, "invalid response body")
        return CallResult(text, None, None, None, attempt.latency_ms, outcome.attempts)

    async def _generate_call(self, prompt: str, max_attempts: int) -> CallResult:
        endpoint = self._images
        if endpoint is None:
            return _unconfigured("images")
        config = endpoint.config

        def request() -> dict[str, Any]:
            payload = {
                "model": config.model,
                "prompt": prompt,
                "n": 1,
                "size": IMAGE_SIZE,
                "response_format": "b64_json",
            }
            return {
                "content": json.dumps(payload, separators=(",", ":")).encode("utf-8"),
                "headers": {"Content-Type": "application/json"},
            }

        return await self._image_call(endpoint, "/images/generations", request, max_attempts)

    async def _image_call(
        self,
        endpoint: _Endpoint,
        route: str,
        request: Callable[[], dict[str, Any]],
        max_attempts: int,
    ) -> CallResult:
        outcome = await self._request(endpoint, "POST", route, request, max_attempts)
        attempt = outcome.attempt
        if outcome.error is not None or attempt.body is None:
            return self._failed(
                endpoint, route, outcome, outcome.error or "empty response", attempt.reason
            )
        try:
            reference = _image_reference(attempt.body)
            if isinstance(reference, bytes):
                image = await _open_image(reference)
                return CallResult(
                    None, image.data, image.media_type, None, attempt.latency_ms, outcome.attempts
                )
        except _InvalidResponse as exc:
            error = self._invalid(endpoint, attempt, exc)
            return self._failed(endpoint, route, outcome, error, "invalid response body")
        return await self._download(endpoint, route, reference, outcome, max_attempts)

    async def _download(
        self,
        endpoint: _Endpoint,
        route: str,
        reference: str,
        generation: _Outcome,
        max_attempts: int,
    ) -> CallResult:
        """Fetch an image that the response gave as a URL, through the endpoint's client."""
        total = generation.attempts
        if reference.startswith("data:"):
            try:
                image = await _open_image(_decode_data_url(reference))
            except _InvalidResponse as exc:
                error = f"invalid image URL: {exc}"
                return self._failed(endpoint, route, generation, error, "invalid image URL")
            return CallResult(
                None, image.data, image.media_type, None, generation.attempt.latency_ms, total
            )
        try:
            url = httpx.URL(endpoint.config.url(route)).join(reference)
        except httpx.InvalidURL:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            error = "invalid image URL in data[0].url: expected an http(s) or data URL"
            return self._failed(endpoint, route, generation, error, "invalid image URL")

        def request() -> dict[str, Any]:
            return {}

        download = await self._request(
            endpoint, "GET", str(url), request, max_attempts, rate_limited=False, absolute=True
        )
        total += download.attempts
        latency_ms = generation.attempt.latency_ms + download.attempt.latency_ms
        body = download.attempt.body
        combined = _Outcome(_Attempt(latency_ms=latency_ms, status=download.attempt.status), total)
        if download.error is not None or body is None:
            error = f"image download failed: {download.error or 'empty response'}"
            reason = f"image download failed: {download.attempt.reason or 'empty response'}"
            return self._failed(endpoint, route, combined, error, reason)
        try:
            image = await _open_image(body)
        except _InvalidResponse as exc:
            error = f"invalid downloaded image: {exc}"
            return self._failed(endpoint, route, combined, error, "invalid downloaded image")
        return CallResult(None, image.data, image.media_type, None, latency_ms, total)

    # HTTP

    async def _request(
        self,
        endpoint: _Endpoint,
        method: str,
        route: str,
        request: Callable[[], dict[str, Any]],
        max_attempts: int,
        *,
        rate_limited: bool = True,
        absolute: bool = False,
    ) -> _Outcome:
        """Send a request until it succeeds, fails for good or runs out of attempts."""
        url = route if absolute else endpoint.config.url(route)
        # A download URL may carry a signature, so its log line names only its host.
        host = httpx.URL(url).netloc.decode("ascii") if absolute else endpoint.host
        log_route = "image download" if absolute else route
        attempts = 0
        while True:
            attempts += 1
            attempt = await self._send(endpoint, method, url, request, rate_limited)
            if attempt.retryable_error is None or attempts >= max_attempts:
                return _Outcome(attempt, attempts)
            delay = self._backoff_delay(endpoint.config, attempts, attempt.retry_after)
            _log().info(
                "model.retry",
                endpoint=endpoint.name,
                host=host,
                route=log_route,
                attempt=attempts,
                status=attempt.status,
                reason=attempt.retryable_error,
                delay_seconds=round(delay, 3),
            )
            await asyncio.sleep(delay)

    async def _send(
        self,
        endpoint: _Endpoint,
        method: str,
        url: str,
        request: Callable[[], dict[str, Any]],
        rate_limited: bool,
    ) -> _Attempt:
        config = endpoint.config
        async with endpoint.semaphore:
            if rate_limited and endpoint.limiter is not None:
                await endpoint.limiter.acquire()
            arguments = request()
            arguments.setdefault("headers", {}).update(endpoint.headers_for(httpx.URL(url)))
            started = time.perf_counter()
            try:
                async with asyncio.timeout(config.timeout_seconds):
                    return await self._exchange(endpoint, method, url, arguments, started)
            except (TimeoutError, httpx.TimeoutException):
                return _Attempt(
                    latency_ms=_elapsed_ms(started),
                    retryable_error=f"timed out after {config.timeout_seconds:g} s",
                )
            except httpx.TransportError as exc:
                return _Attempt(
                    latency_ms=_elapsed_ms(started),
                    retryable_error=endpoint.scrub(_describe_transport_error(exc)),
                )
            except Exception as exc:
                # Such as a content decoding error, or the refusal of the outbound policy in a
                # client from client_factory. A call returns its error instead of raising.
                detail = " ".join(str(exc).split())[:_EXCERPT_CHARS]
                return _Attempt(
                    latency_ms=_elapsed_ms(started),
                    fatal_error=endpoint.scrub(f"request failed ({type(exc).__name__}: {detail})"),
                )

    async def _exchange(
        self,
        endpoint: _Endpoint,
        method: str,
        url: str,
        arguments: dict[str, Any],
        started: float,
    ) -> _Attempt:
        limit = endpoint.config.max_response_bytes
        async with endpoint.http.stream(method, url, **arguments) as response:
            status = response.status_code
            if not 200 <= status < 300:
                body = await _read_at_most(response, _ERROR_BODY_BYTES)
                latency_ms = _elapsed_ms(started)
                excerpt = endpoint.scrub(_excerpt(body))
                if status == 429 or status >= 500:
                    return _Attempt(
                        latency_ms=latency_ms,
                        status=status,
                        retryable_error=f"HTTP {status}",
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                        excerpt=excerpt,
                    )
                if 300 <= status < 400:
                    return _Attempt(
                        latency_ms=latency_ms,
                        status=status,
                        fatal_error=f"HTTP {status} (redirects are not followed)",
                    )
                return _Attempt(
                    latency_ms=latency_ms,
                    status=status,
                    fatal_error=f"HTTP {status}",
                    excerpt=excerpt,
                )
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                return _Attempt(
                    latency_ms=_elapsed_ms(started),
                    status=status,
                    fatal_error=_too_large(limit),
                )
            body = await _read_at_most(response, limit + 1)
            latency_ms = _elapsed_ms(started)
            if len(body) > limit:
                return _Attempt(latency_ms=latency_ms, status=status, fatal_error=_too_large(limit))
            return _Attempt(latency_ms=latency_ms, status=status, body=body)

    # NOTE: this backoff and the Retry-After handling mirror app/judging/client.py; a shared
    # module would keep the two clients in step.
    def _backoff_delay(
        self, config: EndpointConfig, failures: int, retry_after: float | None
    ) -> float:
        """Return the wait before the next attempt: Retry-After if given, else full jitter."""
        cap = config.backoff_max_seconds
        if retry_after is not None:
            return min(retry_after, cap)
        ceiling = min(cap, config.backoff_base_seconds * 2 ** (failures - 1))
        return self._random.uniform(0.0, ceiling)

    # Errors

    def _invalid(self, endpoint: _Endpoint, attempt: _Attempt, exc: _InvalidResponse) -> str:
        excerpt = endpoint.scrub(_excerpt(attempt.body or b""))
        return (
            f"invalid response body from HTTP {attempt.status}: {exc}; body starts {excerpt!r}; "
            "check that base_url points to an OpenAI-compatible /v1 endpoint"
        )

    def _failed(
        self, endpoint: _Endpoint, route: str, outcome: _Outcome, error: str, reason: str | None
    ) -> CallResult:
        """Log a failed call and return its result. ``reason`` is the error without excerpts."""
        error = endpoint.scrub(error)
        _log().warning(
            "model.failed",
            endpoint=endpoint.name,
            host=endpoint.host,
            route=route,
            attempt=outcome.attempts,
            status=outcome.attempt.status,
            # Body excerpts stay out of the log because a server may repeat the request in them.
            reason=endpoint.scrub(reason or error),
        )
        return CallResult(None, None, None, error, outcome.attempt.latency_ms, outcome.attempts)

    @staticmethod
    def _max_attempts(endpoint: _Endpoint | None) -> int:
        return endpoint.config.max_attempts if endpoint is not None else 1


# Response parsing


def _chat_reply_text(body: bytes) -> str:
    """Return the text of the first choice of a chat completion body."""
    data = _json_object(body)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _InvalidResponse("missing choices[0]")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise _InvalidResponse("missing choices[0].message")

    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict):
                raise _InvalidResponse(
                    "invalid choices[0].message.content: a part is not an object"
                )
            if part.get("type") == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise _InvalidResponse(
                        "invalid choices[0].message.content: a text part has no text"
                    )
                texts.append(text)
        return "".join(texts)
    if content is None:
        finish = choice.get("finish_reason")
        raise _InvalidResponse(f"choices[0].message.content is null (finish_reason {finish!r})")
    raise _InvalidResponse(
        f"choices[0].message.content is a {type(content).__name__}, expected a string"
    )


def _image_reference(body: bytes) -> bytes | str:
    """Return the decoded b64_json of ``data[0]``, or its url when it has no b64_json."""
    data = _json_object(body)
    items = data.get("data")
    if not isinstance(items, list) or not items:
        raise _InvalidResponse("missing data[0]")
    item = items[0]
    if not isinstance(item, dict):
        raise _InvalidResponse("data[0] is not an object")
    encoded = item.get("b64_json")
    if isinstance(encoded, str) and encoded:
        if encoded.startswith("data:"):
            return _decode_data_url(encoded)
        return _decode_base64(encoded, "data[0].b64_json")
    url = item.get("url")
    if isinstance(url, str) and url:
        return url
    raise _InvalidResponse("data[0] has neither b64_json nor url")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _InvalidResponse("not JSON") from exc
    if not isinstance(data, dict):
        raise _InvalidResponse(f"a JSON {type(data).__name__}, expected an object")
    return data


def _decode_base64(text: str, name: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _InvalidResponse(f"{name} is not valid base64") from exc


def _decode_data_url(url: str) -> bytes:
    header, separator, payload = url.partition(",")
    if not separator or not header.endswith(";base64"):
        raise _InvalidResponse("data URL is not base64-encoded")
    return _decode_base64(payload, "data URL")


async def _open_image(data: bytes) -> _Image:
    """Decode the image fully, in a thread, to prove that it is a complete image."""
    return await asyncio.to_thread(_check_image, data)


def _check_image(data: bytes) -> _Image:
    try:
        # Image.open reads only the header, so the size check comes before any decoding.
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _InvalidResponse(
                    f"image of {width} x {height} pixels exceeds {MAX_IMAGE_PIXELS} pixels"
                )
            image_format = image.format or ""
            image.load()
    except _InvalidResponse:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        detail = " ".join(str(exc).split())[:_EXCERPT_CHARS]
        raise _InvalidResponse(f"not an image that Pillow can decode ({detail})") from exc
    media_type = _PILLOW_MEDIA_TYPES.get(image_format)
    if media_type is None:
        raise _InvalidResponse(
            f"image format {image_format or 'unknown'} is not PNG, JPEG, WebP or GIF"
        )
    return _Image(data, media_type)


# Helpers


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """Read the decoded body up to ``limit`` bytes and stop there."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _describe_transport_error(exc: httpx.TransportError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    detail = " ".join(str(exc).split())[:_EXCERPT_CHARS]
    return f"connection error ({type(exc).__name__}" + (f": {detail})" if detail else ")")


def _excerpt(body: bytes) -> str:
    return " ".join(body.decode("utf-8", errors="replace").split())[:_EXCERPT_CHARS]


def _too_large(limit: int) -> str:
    return f"response larger than max_response_bytes ({limit} bytes)"


def _unsupported(media_type: str) -> str:
    return f"unsupported media type {media_type!r}: expected one of {sorted(SUPPORTED_MEDIA_TYPES)}"


def _unconfigured(name: str) -> CallResult:
    return CallResult(None, None, None, f"no {name} endpoint is configured", 0, 0)


def _failed_early(endpoint: _Endpoint, route: str, error: str) -> CallResult:
    _log().warning(
        "model.failed",
        endpoint=endpoint.name,
        host=endpoint.host,
        route=route,
        attempt=0,
        status=None,
        reason=error,
    )
    return CallResult(None, None, None, error, 0, 0)


def _display_url(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def _log() -> structlog.stdlib.BoundLogger:
    # A fresh logger per event keeps the current structlog configuration in effect, so
    # structlog.testing.capture_logs() captures these events even after another logger was cached.
    return get_logger(__name__)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
