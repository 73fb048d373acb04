"""A local stand-in judge that serves the OpenAI chat completions API for the demo benchmark.

The stand-in answers yes/no questions of the demo grammar (see docs/demo-benchmark.md) from the
image pixels. It finds flat shapes on a white background as connected components of one colour.
It classifies each as a circle, square or triangle by how much of its bounding box it fills, and
evaluates the question on those shapes. Any other question gets "I cannot tell.", which is
neither yes nor no.

It can also inject faults (HTTP 500, HTTP 429, a stalled reply, a reply that is neither yes nor
no), add a delay and limit the requests in flight, so that judge clients can be tested and
measured. ``POST /control`` changes these settings at run time and ``GET /stats`` reports counts.

Run it with ``python -m app.judging.standin --host 127.0.0.1 --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import io
import random
import re
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.demo.build import PALETTE, PlacedShape, evaluate_question, parse_question
from app.logs import configure_logging, get_logger

MODEL_NAME = "demo-shape-judge"
FAULT_KINDS = ("500", "429", "timeout", "garbage")
UNREADABLE_REPLY = "I cannot tell."
GARBAGE_REPLY = "The image shows some shapes on a background."
MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 16_000_000

_log = get_logger(__name__)


# Pixel analysis

SHAPE_COLOURS = ("red", "green", "blue", "yellow", "black")
# Colours that a pixel is matched to. Grey covers the labels of GEU pictures and the blended
# edge pixels of anti-aliased shapes, so neither is counted as a shape.
_REFERENCE_NAMES = ("white", *SHAPE_COLOURS, "grey")
_REFERENCE_RGB = np.array([PALETTE[name] for name in _REFERENCE_NAMES], dtype=np.int32)
# A pixel farther than this Euclidean RGB distance from every reference colour is ignored.
_MAX_COLOUR_DISTANCE = 110
# Components smaller than this (in pixels, or in bounding box side) are noise, not shapes.
_MIN_SHAPE_AREA = 30
_MIN_SHAPE_SIDE = 5
# Fill ratio of the bounding box: a square fills it, a circle about pi/4 (0.785) of it and an
# upward triangle about half of it.
_SQUARE_MIN_FILL = 0.9
_CIRCLE_MIN_FILL = 0.68
_TRIANGLE_MIN_FILL = 0.35
_MAX_ASPECT_RATIO = 1.4


@dataclass(frozen=True)
class Scene:
    """The shapes found in a picture and whether its background is white."""

    shapes: tuple[PlacedShape, ...]
    background_white: bool


def analyse_image(data: bytes) -> Scene:
    """Detect the flat shapes in an encoded image (PNG, JPEG, WebP or GIF).

    Raises ValueError when the bytes are not a readable image or the image is too large.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"image of {width} x {height} pixels is too large: "
                    f"the limit is {MAX_IMAGE_PIXELS} pixels"
                )
            pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"invalid image data: {exc}") from exc

    labels = _label_colours(pixels)
    shapes: list[PlacedShape] = []
    for index, colour in enumerate(_REFERENCE_NAMES):
        if colour not in SHAPE_COLOURS:
            continue
        for component in _components(labels == index):
            shape = _classify(component, colour)
            if shape is not None:
                shapes.append(shape)
    return Scene(tuple(shapes), _background_is_white(labels))


def _label_colours(pixels: NDArray[np.int32]) -> NDArray[np.int8]:
    """Map each pixel to the index of its nearest reference colour, or -1 when none is near."""
    distances = np.zeros((*pixels.shape[:2], len(_REFERENCE_RGB)), dtype=np.int32)
    for index, rgb in enumerate(_REFERENCE_RGB):
        difference = pixels - rgb
        distances[..., index] = np.einsum("ijk,ijk->ij", difference, difference)
    nearest: NDArray[np.int8] = distances.argmin(axis=-1).astype(np.int8)
    nearest[distances.min(axis=-1) > _MAX_COLOUR_DISTANCE**2] = -1
    return nearest


@dataclass
class _Component:
    area: int = 0
    left: int = 1 << 30
    right: int = -1
    top: int = 1 << 30
    bottom: int = -1


def _components(mask: NDArray[np.bool_]) -> list[_Component]:
    """Return the 4-connected components of ``mask`` with their areas and bounding boxes.

    The mask is split into horizontal runs per row, and runs that overlap in adjacent rows are
    joined with a union-find, which is far faster in Python than a pixel-by-pixel flood fill.
    """
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    starts_y, starts_x = np.nonzero(edges == 1)
    ends_x = np.nonzero(edges == -1)[1]  # exclusive; same row order as the starts

    parent = list(range(len(starts_x)))

    def find(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    previous: list[int] = []  # runs of the previous row, left to right
    current: list[int] = []
    row = -1
    cursor = 0
    for run in range(len(starts_x)):
        y = int(starts_y[run])
        if y != row:
            previous = current if y == row + 1 else []
            current = []
            row = y
            cursor = 0
        start, end = starts_x[run], ends_x[run]
        # Skip runs of the previous row that end before this run starts; they cannot overlap
        # this run or any later one.
        while cursor < len(previous) and ends_x[previous[cursor]] <= start:
            cursor += 1
        probe = cursor
        while probe < len(previous) and starts_x[previous[probe]] < end:
            root_a, root_b = find(run), find(previous[probe])
            if root_a != root_b:
                parent[root_a] = root_b
            probe += 1
        current.append(run)

    components: dict[int, _Component] = {}
    for run in range(len(starts_x)):
        component = components.setdefault(find(run), _Component())
        start, end, y = int(starts_x[run]), int(ends_x[run]), int(starts_y[run])
        component.area += end - start
        component.left = min(component.left, start)
        component.right = max(component.right, end - 1)
        component.top = min(component.top, y)
        component.bottom = max(component.bottom, y)
    return list(components.values())


def _classify(component: _Component, colour: str) -> PlacedShape | None:
    """Return the shape a component shows, or None for noise and for blobs of no known kind."""
    width = component.right - component.left + 1
    height = component.bottom - component.top + 1
    if component.area < _MIN_SHAPE_AREA or min(width, height) < _MIN_SHAPE_SIDE:
        return None
    if max(width, height) / min(width, height) > _MAX_ASPECT_RATIO:
        return None
    fill = component.area / (width * height)
    if fill >= _SQUARE_MIN_FILL:
        kind = "square"
    elif fill >= _CIRCLE_MIN_FILL:
        kind = "circle"
    elif fill >= _TRIANGLE_MIN_FILL:
        kind = "triangle"
    else:
        return None
    return PlacedShape(
        kind=kind,
        colour=colour,
        x=(component.left + component.right) // 2,
        y=(component.top + component.bottom) // 2,
        size=max(width, height),
    )


def _background_is_white(labels: NDArray[np.int8]) -> bool:
    """Tell whether white is the most common colour along the border of the picture."""
    border = np.concatenate([labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]])
    values, counts = np.unique(border, return_counts=True)
    return bool(values[counts.argmax()] == _REFERENCE_NAMES.index("white"))


# Questions

# Candidate questions inside a longer prompt: a sentence that starts with "Is" or "Are" and
# ends with a question mark. Each candidate is then checked against the demo grammar.
_QUESTION_CANDIDATE = re.compile(r"\b(?:Is|Are) [^?\n]*\?")


def find_question(text: str) -> str | None:
    """Return the one demo-grammar question in ``text``, or None when there is none or several."""
    found: set[str] = set()
    for match in _QUESTION_CANDIDATE.finditer(text):
        try:
            parse_question(match.group())
        except ValueError:
            continue
        found.add(match.group())
    return found.pop() if len(found) == 1 else None


def answer_question(question: str, scene: Scene) -> str:
    """Return "yes" or "no" for a demo-grammar question on a scene."""
    parsed = parse_question(question)
    if parsed.form == "background":
        return "yes" if scene.background_white else "no"
    return evaluate_question(parsed, scene.shapes)


# Request parsing


class RequestError(Exception):
    """A client error, returned as an OpenAI-style error body with an HTTP status."""

    def __init__(self, status: int, message: str, error_type: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


_DATA_URL = re.compile(r"data:(image/[\w.+-]+);base64,(.*)", re.DOTALL)


def extract_question_and_image(body: Any) -> tuple[str, bytes]:
    """Return the text and the decoded image of the last user message of a chat request.

    Raises RequestError when the body has no user message, no image or an image that is not a
    base64 data URL. The stand-in never fetches remote URLs.
    """
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise RequestError(400, "invalid request body: expected a JSON object with 'messages'")
    user_messages = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
    if not user_messages:
        raise RequestError(400, "missing user message: add a message with role 'user'")
    content = user_messages[-1].get("content")
    texts: list[str] = []
    urls: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                image_url = part.get("image_url")
                url = image_url.get("url") if isinstance(image_url, dict) else image_url
                if isinstance(url, str):
                    urls.append(url)
    if len(urls) != 1:
        raise RequestError(
            400,
            f"expected exactly one image_url part in the last user message, found {len(urls)}",
        )
    match = _DATA_URL.fullmatch(urls[0])
    if match is None:
        raise RequestError(
            400, "invalid image_url: expected a data URL such as 'data:image/png;base64,...'"
        )
    try:
        image = base64.b64decode(match[2], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(400, f"invalid base64 data in the image data URL: {exc}") from exc
    return "\n".join(texts), image


def estimate_prompt_tokens(text: str, image: bytes) -> int:
    """Estimate prompt tokens: about 4 characters per text token plus a flat 256 per image.

    NOTE: an estimate for the usage field only; it matches no real tokenizer.
    """
    return len(text) // 4 + 256


# The application


@dataclass
class StandinSettings:
    """Run-time behaviour of the stand-in, changed through POST /control."""

    delay: float = 0.0  # seconds added before each reply
    fault_rate: float = 0.0  # share of requests that get a fault, 0 to 1
    faults: tuple[str, ...] = FAULT_KINDS
    seed: int | None = None
    max_concurrent: int = 0  # requests in flight beyond this get HTTP 429; 0 means no limit
    timeout_fault_seconds: float = 30.0  # how long a "timeout" fault stalls
    api_key: str = ""  # when set, requests need "Authorization: Bearer <api_key>"
    # Faults for the next requests in arrival order, before fault_rate applies; "none" skips one.
    next_faults: list[str] = field(default_factory=list)


@dataclass
class StandinStats:
    requests: int = 0
    answered: int = 0
    unreadable: int = 0  # questions outside the demo grammar
    client_errors: int = 0  # 4xx replies other than injected faults and the concurrency limit
    rejected_over_limit: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_concurrent_observed: int = 0

    def reset(self) -> None:
        """Zero the counts in place. Requests still in flight stay counted."""
        self.requests = 0
        self.answered = 0
        self.unreadable = 0
        self.client_errors = 0
        self.rejected_over_limit = 0
        self.faults.clear()
        self.max_concurrent_observed = self.in_flight

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answered": self.answered,
            "unreadable": self.unreadable,
            "client_errors": self.client_errors,
            "rejected_over_limit": self.rejected_over_limit,
            "faults": {kind: self.faults[kind] for kind in FAULT_KINDS},
            "in_flight": self.in_flight,
            "max_concurrent_observed": self.max_concurrent_observed,
        }


class StandinJudge:
    """The state of one stand-in server: settings, counters, fault draws and an analysis cache."""

    CACHE_SIZE = 512

    def __init__(self, settings: StandinSettings, model: str = MODEL_NAME) -> None:
        self.settings = settings
        self.model = model
        self.stats = StandinStats()
        self._random = random.Random(settings.seed)  # noqa: S311 (fault draws, not security)
        # Analyses by SHA-256 of the image bytes. Each entry is a task, so concurrent requests
        # for the same image wait for one analysis instead of starting their own.
        self._scenes: OrderedDict[str, asyncio.Task[Scene]] = OrderedDict()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/stats", self.get_stats, methods=["GET"]),
            Route("/control", self.control, methods=["POST"]),
        ]

    async def scene_for(self, image: bytes) -> Scene:
        """Analyse an image in a worker thread, or return the cached analysis of equal bytes."""
        digest = hashlib.sha256(image).hexdigest()
        task = self._scenes.get(digest)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(analyse_image, image))
            self._scenes[digest] = task
            while len(self._scenes) > self.CACHE_SIZE:
                self._scenes.popitem(last=False)
        else:
            self._scenes.move_to_end(digest)
        try:
            return await asyncio.shield(task)
        except ValueError:
            self._scenes.pop(digest, None)
            raise

    def draw_fault(self) -> str | None:
        settings = self.settings
        if settings.next_faults:
            kind = settings.next_faults.pop(0)
            return None if kind == "none" else kind
        drawn = settings.fault_rate > 0 and self._random.random() < settings.fault_rate
        if drawn and settings.faults:
            return self._random.choice(settings.faults)
        return None

    def _authorized(self, request: Request) -> bool:
        if not self.settings.api_key:
            return True
        return request.headers.get("authorization", "") == f"Bearer {self.settings.api_key}"

    async def chat_completions(self, request: Request) -> JSONResponse:
        stats = self.stats  # reset() zeroes this object in place, so the reference stays valid
        stats.requests += 1
        stats.in_flight += 1
        stats.max_concurrent_observed = max(stats.max_concurrent_observed, stats.in_flight)
        try:
            limit = self.settings.max_concurrent
            if limit and stats.in_flight > limit:
                # Counted in /stats and not logged, because a busy server rejects many at once.
                stats.rejected_over_limit += 1
                return _error(
                    429,
                    f"too many requests in flight: the limit is {limit}; retry later",
                    "rate_limit_error",
                    headers={"Retry-After": "1"},
                )
            try:
                return await self._complete(request)
            except RequestError as exc:
                stats.client_errors += 1
                _log.info("standin.rejected", status=exc.status, error=exc.message)
                return _error(exc.status, exc.message, exc.error_type)
        finally:
            stats.in_flight -= 1

    async def _complete(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            raise RequestError(
                401, "invalid or missing API key: send 'Authorization: Bearer KEY'", "auth_error"
            )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise RequestError(413, f"request body too large: the limit is {MAX_BODY_BYTES} bytes")
        try:
            body = await request.json()
        except ValueError as exc:
            raise RequestError(400, f"invalid JSON body: {exc}") from exc
        requested_model = body.get("model") if isinstance(body, dict) else None
        if requested_model != self.model:
            raise RequestError(
                404,
                f"model {requested_model!r} not found: this server serves {self.model!r}",
                "not_found_error",
            )
        text, image = extract_question_and_image(body)

        fault = self.draw_fault()
        if fault is not None:
            self.stats.faults[fault] += 1
            _log.info("standin.fault", fault=fault)
            if fault == "500":
                return _error(500, "injected fault: internal server error", "server_error")
            if fault == "429":
                return _error(
                    429,
                    "injected fault: rate limit reached",
                    "rate_limit_error",
                    headers={"Retry-After": "1"},
                )
            if fault == "timeout":
                await _stall(request, self.settings.timeout_fault_seconds)
                return _error(504, "injected fault: the reply timed out", "server_error")

        if self.settings.delay > 0:
            await asyncio.sleep(self.settings.delay)

        if fault == "garbage":
            reply = GARBAGE_REPLY
        else:
            reply = await self._reply(text, image)
        return JSONResponse(self._completion(reply, text, image))

    async def _reply(self, text: str, image: bytes) -> str:
        question = find_question(text)
        if question is None:
            self.stats.unreadable += 1
            return UNREADABLE_REPLY
        try:
            scene = await self.scene_for(image)
        except ValueError as exc:
            raise RequestError(400, str(exc)) from exc
        self.stats.answered += 1
        return answer_question(question, scene)

    def _completion(self, reply: str, text: str, image: bytes) -> dict[str, Any]:
        prompt_tokens = estimate_prompt_tokens(text, image)
        completion_tokens = 2  # an estimate: one word and a full stop at most
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def list_models(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "owned_by": "realunify-board"}],
            }
        )

    async def get_stats(self, request: Request) -> JSONResponse:
        return JSONResponse(self.stats.as_dict())

    async def control(self, request: Request) -> JSONResponse:
        """Change settings at run time from a JSON object; "reset_stats": true zeroes counts."""
        if not self._authorized(request):
            return _error(401, "invalid or missing API key: send 'Authorization: Bearer KEY'")
        try:
            body = await request.json()
            self._apply_control(body)
        except (ValueError, TypeError) as exc:
            return _error(400, f"invalid control request: {exc}")
        return JSONResponse(self._settings_dict())

    def _apply_control(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        known = {
            "delay",
            "fault_rate",
            "faults",
            "seed",
            "max_concurrent",
            "timeout_fault_seconds",
            "api_key",
            "next_faults",
            "reset_stats",
        }
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown fields {unknown}: expected some of {sorted(known)}")

        settings = self.settings
        if "delay" in body:
            settings.delay = _non_negative(body["delay"], "delay")
        if "fault_rate" in body:
            settings.fault_rate = _fraction(body["fault_rate"], "fault_rate")
        if "faults" in body:
            settings.faults = parse_faults(body["faults"])
        if "seed" in body:
            settings.seed = None if body["seed"] is None else int(body["seed"])
            self._random = random.Random(settings.seed)  # noqa: S311 (fault draws, not security)
        if "max_concurrent" in body:
            settings.max_concurrent = int(_non_negative(body["max_concurrent"], "max_concurrent"))
        if "timeout_fault_seconds" in body:
            settings.timeout_fault_seconds = _non_negative(
                body["timeout_fault_seconds"], "timeout_fault_seconds"
            )
        if "api_key" in body:
            settings.api_key = str(body["api_key"] or "")

        if "next_faults" in body:
            kinds = list(body["next_faults"])
            invalid = [kind for kind in kinds if kind not in (*FAULT_KINDS, "none")]
            if invalid:
                raise ValueError(f"invalid next_faults {invalid}: expected {FAULT_KINDS} or none")
            settings.next_faults = kinds

        if body.get("reset_stats"):
            self.stats.reset()

    def _settings_dict(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "delay": settings.delay,
            "fault_rate": settings.fault_rate,
            "faults": list(settings.faults),
            "seed": settings.seed,
            "max_concurrent": settings.max_concurrent,
            "timeout_fault_seconds": settings.timeout_fault_seconds,
            "api_key_set": bool(settings.api_key),
            "next_faults": list(settings.next_faults),
        }


async def _stall(request: Request, seconds: float) -> None:
    """Wait ``seconds``, or less if the client disconnects first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))


def _error(
    status: int,
    message: str,
    error_type: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _non_negative(value: Any, name: str) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError(f"invalid {name} {value!r}: expected a number >= 0")
    return number


def _fraction(value: Any, name: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(f"invalid {name} {value!r}: expected a number from 0 to 1")
    return number


def parse_faults(value: str | Sequence[str]) -> tuple[str, ...]:
    """Parse fault kinds from a comma-separated string or a list, such as "500,429,timeout"."""
    kinds = [part.strip() for part in value.split(",")] if isinstance(value, str) else list(value)
    kinds = [kind for kind in kinds if kind]
    invalid = [kind for kind in kinds if kind not in FAULT_KINDS]
    if invalid:
        raise ValueError(f"invalid fault kinds {invalid}: expected some of {list(FAULT_KINDS)}")
    return tuple(kinds)


def create_app(settings: StandinSettings | None = None, model: str = MODEL_NAME) -> Starlette:
    """Create the stand-in ASGI app. ``app.state.judge`` is its StandinJudge."""
    judge = StandinJudge(settings or StandinSettings(), model)
    app = Starlette(routes=judge.routes())
    app.state.judge = judge
    return app


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app.judging.standin",
        description=(
            "Serve the demo judge: an OpenAI-compatible chat completions API that answers the "
            "demo benchmark's yes/no questions from the image pixels."
        ),
    )

    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8001, help="TCP port to listen on")
    parser.add_argument("--model", default=MODEL_NAME, help="model name to serve")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds to wait before each reply"
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=0,
        help="requests in flight beyond this number get HTTP 429 (0: no limit)",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests that get a fault, 0 to 1"
    )
    parser.add_argument(
        "--faults",
        default=",".join(FAULT_KINDS),
        help="comma-separated fault kinds to draw from: 500, 429, timeout, garbage",
    )
    parser.add_argument(
        "--timeout-fault-seconds",
        type=float,
        default=30.0,
        help="seconds a 'timeout' fault stalls before it replies with HTTP 504",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault draws")
    parser.add_argument(
        "--api-key-env",
        default="",
        metavar="NAME",
        help="environment variable holding an API key that requests must send as a bearer token",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")

    args = parser.parse_args(argv)
    if not 0 <= args.fault_rate <= 1:
        parser.error(f"invalid --fault-rate {args.fault_rate}: expected a number from 0 to 1")
    if args.delay < 0 or args.max_concurrent < 0 or args.timeout_fault_seconds < 0:
        parser.error("--delay, --max-concurrent and --timeout-fault-seconds must be >= 0")
    try:
        args.faults = parse_faults(args.faults)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the stand-in judge with uvicorn until interrupted."""
    import os

    args = parse_args(argv)
    api_key = os.environ.get(args.api_key_env, "") if args.api_key_env else ""
    settings = StandinSettings(
        delay=args.delay,
        fault_rate=args.fault_rate,
        faults=args.faults,
        seed=args.seed,
        max_concurrent=args.max_concurrent,
        timeout_fault_seconds=args.timeout_fault_seconds,
        api_key=api_key,
    )
    configure_logging(args.log_level.upper())
    _log.info(
        "standin.start",
        host=args.host,
        port=args.port,
        model=args.model,
        delay=args.delay,
        fault_rate=args.fault_rate,
        max_concurrent=args.max_concurrent,
    )
    uvicorn.run(
        create_app(settings, args.model),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        backlog=4096,
        access_log=False,
        # A stalled "timeout" fault must not hold up a stop for its full stall time.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
