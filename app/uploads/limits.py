"""ASGI middleware that rejects request bodies over a size limit with 413 on chosen paths."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.uploads.images import format_size


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the limit.

    It is an HTTPException, so FastAPI passes it on instead of turning body read errors into 400.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


class BodyStalled(HTTPException):
    """Raised from ``receive`` when the client sends no body bytes for too long."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=408, detail=detail)


class BodySizeLimit:
    """Respond with 413 to request bodies over ``max_bytes`` on paths that start with a prefix.

    A Content-Length over the limit is rejected before the application runs. Otherwise the
    bytes are counted as the application reads them, and the read that passes the limit raises
    BodyTooLarge, so no further body is read. Whatever the application then sends is replaced
    by the 413 response, unless its response had already started.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        path_prefixes: Sequence[str],
        idle_timeout_seconds: float | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_prefixes = tuple(path_prefixes)
        # A client that stops sending mid-body would otherwise hold the connection forever.
        self.idle_timeout_seconds = idle_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.path_prefixes):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._send_413(send, f"the request body ({format_size(declared)})")
            return

        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(self._detail("the request body"))
            try:
                message = await asyncio.wait_for(receive(), self.idle_timeout_seconds)
            except TimeoutError:
                raise BodyStalled(
                    f"the upload stalled: no data for {self.idle_timeout_seconds:g} seconds; "
                    "check the connection and send the request again"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(self._detail("the request body"))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                # The application responded after the limit was passed, so send the 413 instead.
                if message["type"] == "http.response.start":
                    response_started = True
                    await self._send_413(send, "the request body")
                return
            if exceeded:
                return  # the rest of the replaced response
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if response_started:
                raise
            response_started = True
            await self._send_413(send, "the request body")

    def _detail(self, subject: str) -> str:
        return (
            f"{subject} is over the {format_size(self.max_bytes)} upload limit; split the "
            "submission or shrink the images"
        )

    async def _send_413(self, send: Send, subject: str) -> None:
        body = json.dumps({"detail": self._detail(subject)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The unread rest of the body makes the connection unusable for another
                    # request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
