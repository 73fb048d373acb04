"""A stand-in for a unified model's OpenAI-compatible endpoints, for tests and demos.

It serves ``POST /v1/chat/completions``, ``POST /v1/images/generations`` and
``POST /v1/images/edits``, and ``GET /files/{name}`` for images that it returns by URL. A
``StandinModel`` object configures it: tests that run it in their own process set its
attributes, and ``POST /control`` changes the JSON-expressible settings at run time.

- Chat replies come from ``chat_reply``: a fixed text, a mapping from a substring of the prompt
  to a reply (the first key found wins, else ``default_reply``), or a callable of the prompt.
- Generations draw ``scenes(prompt)`` when it returns an image or a list of demo shapes, and a
  64 x 64 white PNG otherwise. ``demo_scenes()`` draws the reference scene of every demo UEG
  prompt and of its explicit rewrite.
- Edits return ``edit(image, prompt)``, by default the input with a red border.
- ``faults`` lists the outcomes of the next requests, one per request: "500", "429" (with
  ``Retry-After: retry_after``), "timeout" (no reply until the client disconnects), "malformed"
  (a 200 reply that is not JSON), or a ``RawResponse``.
- Counters: calls per route, calls per (route, prompt hash), requests in flight and their max,
  and the Authorization header of every request.

Run it with ``python -m tests.modelrun.standin_model --port 9000 [--demo]``. It binds to
127.0.0.1 unless ``--host`` names another address.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import io
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from PIL import Image, ImageDraw, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.demo.build import (
    PALETTE,
    STEP_PROMPT_TEMPLATE,
    UEG_CANVAS,
    PlacedShape,
    render_scene,
    ueg_tasks,
)

MODEL_NAME = "standin-unified"
DEFAULT_REPLY = "A"
FAULT_KINDS = ("500", "429", "timeout", "malformed")
CHAT_ROUTE = "/v1/chat/completions"
GENERATIONS_ROUTE = "/v1/images/generations"
EDITS_ROUTE = "/v1/images/edits"
ROUTES = (CHAT_ROUTE, GENERATIONS_ROUTE, EDITS_ROUTE)

ChatReply = str | Mapping[str, str] | Callable[[str], str]
# A scene is a finished picture or demo shapes to draw on a 400 x 400 white canvas.
Scene = Image.Image | Sequence[PlacedShape]


@dataclass(frozen=True)
class RawResponse:
    """A reply to send as is in place of the route's own, for fault injection."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    chunked: bool = False  # send without Content-Length, in chunks of 64 KiB


@dataclass(frozen=True)
class RecordedRequest:
    """What the stand-in received on one model route."""

    route: str
    model: str | None
    prompt: str
    fields: dict[str, Any]  # the other top-level JSON or form fields, with text values only
    image: bytes | None  # the input image of a chat message or an edit
    image_media_type: str | None
    authorization: str | None


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def white_image() -> Image.Image:
    return Image.new("RGB", (64, 64), "white")


def red_border(image: Image.Image, prompt: str) -> Image.Image:
    """Return the image with a 4-pixel red border, the default edit."""
    edited = image.convert("RGB")
    draw = ImageDraw.Draw(edited)
    width, height = edited.size
    draw.rectangle((0, 0, width - 1, height - 1), outline=PALETTE["red"], width=4)
    return edited


def demo_scenes() -> Callable[[str], Scene | None]:
    """Return a scene function that draws the reference scene of each demo UEG prompt.

    It draws for the direct prompts and their explicit rewrites. Other prompts give None.
    """
    scenes: dict[str, tuple[PlacedShape, ...]] = {}
    for task in ueg_tasks():
        scenes[task.prompt] = task.scene
        scenes[task.explicit_prompt] = task.scene
    return scenes.get


def demo_chat_replies() -> dict[str, str]:
    """Return chat replies that rewrite each demo UEG_step prompt into its explicit prompt."""
    return {
        STEP_PROMPT_TEMPLATE.format(prompt=task.prompt): task.explicit_prompt
        for task in ueg_tasks()
    }


class _Rejected(Exception):
    def __init__(self, status: int, message: str, error_type: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


class StandinModel:
    """Settings, counters and routes of the stand-in. Change attributes between requests."""

    def __init__(self, model: str | None = MODEL_NAME) -> None:
        self._default_model = model
        self.reset()

    def reset(self) -> None:
        """Restore the default settings and clear every counter and stored file."""
        self.model: str | None = self._default_model  # None accepts any model name
        self.api_key = ""  # required as a Bearer token when non-empty
        self.chat_reply: ChatReply = DEFAULT_REPLY
        self.default_reply = DEFAULT_REPLY  # when no key of a chat_reply mapping matches
        self.scenes: Callable[[str], Scene | None] | Mapping[str, Scene] | None = None
        self.edit: Callable[[Image.Image, str], Image.Image] = red_border
        self.image_response = "request"  # "request" follows response_format; or "b64_json", "url"
        self.url_base = ""  # where returned image URLs point; "" means this server
        self.delay = 0.0  # seconds before every model route replies
        self.faults: deque[str | RawResponse] = deque()
        self.retry_after = "0"
        self.calls: Counter[str] = Counter()
        self.prompt_calls: Counter[tuple[str, str]] = Counter()
        self.requests: list[RecordedRequest] = []
        self.authorizations: list[str | None] = []  # of every request to a model route
        self.files: dict[str, tuple[bytes, str]] = {}
        self.in_flight = 0
        self.max_in_flight = 0

    def calls_for(self, prompt: str, route: str | None = None) -> int:
        """Return how often a prompt was received, on one route or on all of them."""
        digest = prompt_hash(prompt)
        return sum(
            count
            for (seen_route, seen_hash), count in self.prompt_calls.items()
            if seen_hash == digest and route in (None, seen_route)
        )

    def add_file(self, data: bytes, media_type: str = "image/png") -> str:
        """Store bytes under a new name and return its path, served by ``GET /files/{name}``."""
        name = f"{uuid.uuid4().hex}.bin"
        self.files[name] = (data, media_type)
        return f"/files/{name}"

    def routes(self) -> list[Route]:
        return [
            Route(CHAT_ROUTE, self._chat, methods=["POST"]),
            Route(GENERATIONS_ROUTE, self._generations, methods=["POST"]),
            Route(EDITS_ROUTE, self._edits, methods=["POST"]),
            Route("/files/{name}", self._file, methods=["GET"]),
            Route("/control", self._control, methods=["POST"]),
            Route("/stats", self._stats, methods=["GET"]),
        ]

    # Model routes

    async def _chat(self, request: Request) -> Response:
        return await self._serve(request, CHAT_ROUTE, self._complete)

    async def _generations(self, request: Request) -> Response:
        return await self._serve(request, GENERATIONS_ROUTE, self._generate)

    async def _edits(self, request: Request) -> Response:
        return await self._serve(request, EDITS_ROUTE, self._edit)

    async def _serve(
        self,
        request: Request,
        route: str,
        handler: Callable[[Request], Awaitable[tuple[RecordedRequest, Response]]],
    ) -> Response:
        authorization = request.headers.get("authorization")
        self.authorizations.append(authorization)
        self.calls[route] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.api_key and authorization != f"Bearer {self.api_key}":
                # Like some real servers, the message repeats the key it received.
                echoed_key = (authorization or "").removeprefix("Bearer ")
                return _error(401, f"Incorrect API key provided: {echoed_key!r}", "authentication")
            if self.faults:
                fault = self.faults.popleft()
                response = await self._fault(request, fault)
                if response is not None:
                    return response
            try:
                recorded, response = await handler(request)
            except _Rejected as exc:
                return _error(exc.status, exc.message, exc.error_type)
            self.requests.append(recorded)
            self.prompt_calls[(route, prompt_hash(recorded.prompt))] += 1
            return response
        finally:
            self.in_flight -= 1

    async def _fault(self, request: Request, fault: str | RawResponse) -> Response | None:
        if isinstance(fault, RawResponse):
            if fault.chunked:
                return StreamingResponse(
                    _chunks(fault.body),
                    status_code=fault.status,
                    headers=dict(fault.headers),
                    media_type=fault.media_type,
                )
            return Response(
                fault.body,
                status_code=fault.status,
                headers=dict(fault.headers),
                media_type=fault.media_type,
            )
        if fault == "500":
            return _error(500, "injected server error", "server_error")
        if fault == "429":
            return _error(
                429, "injected rate limit", "rate_limit", headers={"Retry-After": self.retry_after}
            )
        if fault == "timeout":
            await _stall(request, 60.0)
            return Response(b"", status_code=504)
        if fault == "malformed":
            return Response(b'{"choices": [', media_type="application/json")
        raise ValueError(f"invalid fault {fault!r}: expected one of {FAULT_KINDS} or RawResponse")

    def _check_model(self, model: Any) -> str:
        if not isinstance(model, str) or not model:
            raise _Rejected(400, "missing model")
        if self.model is not None and model != self.model:
            raise _Rejected(404, f"The model {model!r} does not exist", "model_not_found")
        return model

    async def _complete(self, request: Request) -> tuple[RecordedRequest, Response]:
        body = await _json_body(request)
        model = self._check_model(body.get("model"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Rejected(400, "messages must be a non-empty list")
        message = messages[-1]
        if not isinstance(message, dict) or message.get("role") != "user":
            raise _Rejected(400, "the last message must be a user message")

        prompt, image, media_type = _message_parts(message.get("content"))
        reply = self._reply(prompt)

        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                }
            ],
        }

        fields = {key: value for key, value in body.items() if key != "messages"}
        recorded = RecordedRequest(
            CHAT_ROUTE,
            model,
            prompt,
            fields,
            image,
            media_type,
            request.headers.get("authorization"),
        )
        return recorded, JSONResponse(completion)

    def _reply(self, prompt: str) -> str:
        reply = self.chat_reply
        if isinstance(reply, str):
            return reply
        if isinstance(reply, Mapping):
            for substring, text in reply.items():
                if substring in prompt:
                    return text
            return self.default_reply
        return reply(prompt)

    async def _generate(self, request: Request) -> tuple[RecordedRequest, Response]:
        body = await _json_body(request)
        model = self._check_model(body.get("model"))
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _Rejected(400, "missing prompt")
        if body.get("n", 1) != 1:
            raise _Rejected(400, "the stand-in generates only n=1")
        picture = self._draw(prompt)
        recorded = RecordedRequest(
            GENERATIONS_ROUTE,
            model,
            prompt,
            {key: value for key, value in body.items() if key != "prompt"},
            None,
            None,
            request.headers.get("authorization"),
        )
        return recorded, self._image_response(request, picture, body.get("response_format"))

    def _draw(self, prompt: str) -> Image.Image:
        scenes = self.scenes
        if scenes is None:
            scene = None
        elif isinstance(scenes, Mapping):
            scene = scenes.get(prompt)
        else:
            scene = scenes(prompt)
        if scene is None:
            return white_image()
        if isinstance(scene, Image.Image):
            return scene
        return render_scene(scene, UEG_CANVAS, UEG_CANVAS).convert("RGB")

    async def _edit(self, request: Request) -> tuple[RecordedRequest, Response]:
        async with request.form() as form:
            model = self._check_model(form.get("model"))
            prompt = form.get("prompt")
            upload = form.get("image")
            if not isinstance(prompt, str) or not prompt:
                raise _Rejected(400, "missing prompt")
            if not isinstance(upload, UploadFile):
                raise _Rejected(400, "missing image file")
            data = await upload.read()
            media_type = upload.content_type
            fields: dict[str, Any] = {
                key: value
                for key, value in form.items()
                if isinstance(value, str) and key != "prompt"
            }
            fields["image_filename"] = upload.filename
        picture = _open_image(data)
        edited = self.edit(picture, prompt)
        recorded = RecordedRequest(
            EDITS_ROUTE,
            model,
            prompt,
            fields,
            data,
            media_type,
            request.headers.get("authorization"),
        )
        return recorded, self._image_response(request, edited, fields.get("response_format"))

    def _image_response(
        self, request: Request, picture: Image.Image, response_format: Any
    ) -> Response:
        data = encode_png(picture)
        mode = self.image_response
        if mode == "request":
            mode = "url" if response_format == "url" else "b64_json"
        if mode == "url":
            base = self.url_base or str(request.base_url).rstrip("/")
            item = {"url": base + self.add_file(data)}
        else:
            item = {"b64_json": base64.b64encode(data).decode("ascii")}
        return JSONResponse({"created": int(time.time()), "data": [item]})

    # Other routes

    async def _file(self, request: Request) -> Response:
        self.authorizations.append(request.headers.get("authorization"))
        self.calls["/files"] += 1
        stored = self.files.get(request.path_params["name"])
        if stored is None:
            return _error(404, "no such file", "not_found")
        return Response(stored[0], media_type=stored[1])

    async def _control(self, request: Request) -> Response:
        """Change settings: model, api_key, chat_reply (text or mapping), default_reply, delay,
        faults (kinds), retry_after, image_response, url_base, demo (bool), reset (bool)."""
        body = await request.json()
        if not isinstance(body, dict):
            return _error(400, "expected a JSON object")
        if body.get("reset"):
            self.reset()
        for name in ("model", "api_key", "default_reply", "retry_after", "url_base"):
            if name in body:
                setattr(self, name, body[name])
        if "chat_reply" in body:
            self.chat_reply = body["chat_reply"]
        if "delay" in body:
            self.delay = float(body["delay"])
        if "image_response" in body:
            if body["image_response"] not in ("request", "b64_json", "url"):
                return _error(400, "image_response must be request, b64_json or url")
            self.image_response = body["image_response"]
        if "faults" in body:
            invalid = [kind for kind in body["faults"] if kind not in FAULT_KINDS]
            if invalid:
                return _error(400, f"invalid faults {invalid}: expected some of {FAULT_KINDS}")
            self.faults = deque(body["faults"])
        if body.get("demo"):
            self.scenes = demo_scenes()
            self.chat_reply = demo_chat_replies()
        return JSONResponse({"ok": True})

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "calls": dict(self.calls),
                "max_calls_per_prompt": max(self.prompt_calls.values(), default=0),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }
        )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise _Rejected(400, "the body is not JSON") from exc
    if not isinstance(body, dict):
        raise _Rejected(400, "the body is not a JSON object")
    return body


def _message_parts(content: Any) -> tuple[str, bytes | None, str | None]:
    """Return the text, the image bytes and the image media type of a user message."""
    if isinstance(content, str):
        return content, None, None
    if not isinstance(content, list):
        raise _Rejected(400, "message content must be a string or a list of parts")
    texts: list[str] = []
    image: bytes | None = None
    media_type: str | None = None
    for part in content:
        if not isinstance(part, dict):
            raise _Rejected(400, "a content part is not an object")
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url")
            if not isinstance(url, str) or not url.startswith("data:"):
                raise _Rejected(400, "image_url must be a data URL")
            header, _, payload = url.partition(",")
            media_type = header.removeprefix("data:").removesuffix(";base64")
            try:
                image = base64.b64decode(payload, validate=True)
            except binascii.Error as exc:
                raise _Rejected(400, "image_url is not valid base64") from exc
            _open_image(image)
        else:
            raise _Rejected(400, f"unsupported content part {part.get('type')!r}")
    return "\n".join(texts), image, media_type


def _open_image(data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            return picture.copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise _Rejected(400, "the image cannot be decoded") from exc


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65536):
        yield data[start : start + 65536]


async def _stall(request: Request, seconds: float) -> None:
    """Wait ``seconds``, or less if the client disconnects first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.05)


def _error(
    status: int,
    message: str,
    error_type: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(model: StandinModel | None = None) -> Starlette:
    """Create the stand-in ASGI app. ``app.state.model`` is its StandinModel."""
    standin = model or StandinModel()
    app = Starlette(routes=standin.routes())
    app.state.model = standin
    return app


@dataclass
class RunningStandin:
    """A stand-in served on 127.0.0.1: its URLs and the StandinModel that configures it."""

    root_url: str
    model: StandinModel

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"


@contextmanager
def serve_in_thread(model: StandinModel | None = None) -> Iterator[RunningStandin]:
    """Serve a stand-in with uvicorn in a daemon thread on a free port of 127.0.0.1."""
    app = create_app(model)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the stand-in model server did not start within 10 s")
        time.sleep(0.02)
    try:
        yield RunningStandin(f"http://127.0.0.1:{port}", app.state.model)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--model", default=MODEL_NAME, help="the model name to accept")
    parser.add_argument("--api-key", default="", help="require this Bearer token")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="draw the reference scene of each demo UEG prompt and rewrite UEG_step prompts",
    )
    args = parser.parse_args(argv)
    standin = StandinModel(args.model)
    standin.api_key = args.api_key
    if args.demo:
        standin.scenes = demo_scenes()
        standin.chat_reply = demo_chat_replies()
    uvicorn.run(create_app(standin), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
