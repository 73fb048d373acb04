"""The model client against the stand-in model: calls, image responses, retries, limits, secrets."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
import structlog
from PIL import Image

from app.demo.build import PALETTE, ueg_tasks
from app.modelrun.client import CallResult, EndpointConfig, ModelClient
from tests.modelrun.conftest import StandinServer
from tests.modelrun.standin_model import (
    CHAT_ROUTE,
    EDITS_ROUTE,
    GENERATIONS_ROUTE,
    RawResponse,
    demo_scenes,
    encode_png,
)

T = TypeVar("T")


def run(
    chat: EndpointConfig | None,
    images: EndpointConfig | None,
    action: Callable[[ModelClient], Awaitable[T]],
    client_factory: Callable[[EndpointConfig], httpx.AsyncClient] | None = None,
) -> T:
    async def main() -> T:
        async with ModelClient(chat, images, client_factory) as client:
            return await action(client)

    return asyncio.run(main())


def png(colour: str = "blue", size: tuple[int, int] = (32, 24)) -> bytes:
    return encode_png(Image.new("RGB", size, colour))


def json_response(data: Any, status: int = 200) -> RawResponse:
    return RawResponse(status=status, body=json.dumps(data).encode())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def assert_success(result: CallResult) -> None:
    assert result.error is None, result.error


# Calls


def test_chat_sends_prompt_and_image_and_returns_reply(standin_model: StandinServer) -> None:
    standin_model.model.chat_reply = {"Which shape": "The answer is C.", "Reply": "OK"}
    image = png()
    result = run(
        standin_model.config(),
        None,
        lambda client: client.chat("Which shape is in the centre?", image, "image/png"),
    )
    assert_success(result)
    assert result.text == "The answer is C."
    assert result.image is None
    assert result.attempts == 1
    [request] = standin_model.model.requests
    assert request.route == CHAT_ROUTE
    assert request.prompt == "Which shape is in the centre?"
    assert request.image == image
    assert request.image_media_type == "image/png"
    assert request.fields["model"] == "standin-unified"
    assert request.fields["temperature"] == 0


def test_chat_without_image_gets_default_reply(standin_model: StandinServer) -> None:
    result = run(standin_model.config(), None, lambda client: client.chat("Pick one."))
    assert_success(result)
    assert result.text == "A"
    assert standin_model.model.requests[0].image is None


def test_chat_reply_from_callable(standin_model: StandinServer) -> None:
    standin_model.model.chat_reply = lambda prompt: prompt.upper()
    result = run(standin_model.config(), None, lambda client: client.chat("rewrite me"))
    assert result.text == "REWRITE ME"


def test_generate_image_b64_draws_demo_scene(standin_model: StandinServer) -> None:
    task = ueg_tasks()[0]
    standin_model.model.scenes = demo_scenes()
    result = run(None, standin_model.config(), lambda client: client.generate_image(task.prompt))
    assert_success(result)
    assert result.media_type == "image/png"
    assert result.image is not None
    with Image.open(io.BytesIO(result.image)) as picture:
        rgb = picture.convert("RGB")
    assert rgb.size == (400, 400)
    first = task.scene[0]
    assert rgb.getpixel((first.x, first.y)) == PALETTE[first.colour]
    [request] = standin_model.model.requests
    assert request.route == GENERATIONS_ROUTE
    assert request.fields == {
        "model": "standin-unified",
        "n": 1,
        "size": "1024x1024",
        "response_format": "b64_json",
    }


def test_generate_image_default_is_white_png(standin_model: StandinServer) -> None:
    result = run(None, standin_model.config(), lambda client: client.generate_image("anything"))
    assert_success(result)
    assert result.image is not None
    with Image.open(io.BytesIO(result.image)) as picture:
        assert picture.size == (64, 64)
        assert picture.convert("RGB").getpixel((10, 10)) == (255, 255, 255)


def test_edit_image_sends_multipart_and_returns_edit(standin_model: StandinServer) -> None:
    source = png("blue", (40, 30))
    result = run(
        None,
        standin_model.config(),
        lambda client: client.edit_image(source, "image/png", "Restore the picture."),
    )
    assert_success(result)
    assert result.image is not None
    assert result.media_type == "image/png"
    with Image.open(io.BytesIO(result.image)) as picture:
        rgb = picture.convert("RGB")
    assert rgb.size == (40, 30)
    assert rgb.getpixel((0, 0)) == PALETTE["red"]
    assert rgb.getpixel((20, 15)) == (0, 0, 255)
    [request] = standin_model.model.requests
    assert request.route == EDITS_ROUTE
    assert request.prompt == "Restore the picture."
    assert request.image == source
    assert request.image_media_type == "image/png"
    assert request.fields == {
        "model": "standin-unified",
        "n": "1",
        "response_format": "b64_json",
        "image_filename": "image.png",
    }


def test_jpeg_reply_gets_its_media_type(standin_model: StandinServer) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "green").save(buffer, format="JPEG")
    body = {"data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}]}
    standin_model.model.faults.append(json_response(body))
    result = run(None, standin_model.config(), lambda client: client.generate_image("x"))
    assert_success(result)
    assert result.media_type == "image/jpeg"


# Image URLs


def test_image_url_same_origin_gets_key(standin_model: StandinServer) -> None:
    standin_model.model.api_key = "same-origin-key"
    standin_model.model.image_response = "url"
    config = standin_model.config(api_key="same-origin-key")
    result = run(None, config, lambda client: client.generate_image("draw"))
    assert_success(result)
    assert result.attempts == 2
    assert result.image is not None
    assert result.image.startswith(b"\x89PNG")
    assert standin_model.model.calls["/files"] == 1
    assert standin_model.model.authorizations == ["Bearer same-origin-key"] * 2


def test_image_url_on_other_origin_gets_no_key(
    standin_model: StandinServer, other_standin: StandinServer
) -> None:
    path = other_standin.model.add_file(png("yellow"))
    standin_model.model.faults.append(
        json_response({"data": [{"url": other_standin.root_url + path}]})
    )
    config = standin_model.config(api_key="do-not-forward")
    result = run(None, config, lambda client: client.generate_image("draw"))
    assert_success(result)
    assert other_standin.model.authorizations == [None]
    assert standin_model.model.authorizations == ["Bearer do-not-forward"]


def test_image_url_is_downloaded_through_client_factory(standin_model: StandinServer) -> None:
    standin_model.model.image_response = "url"
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    def factory(config: EndpointConfig) -> httpx.AsyncClient:
        return httpx.AsyncClient(event_hooks={"request": [record]}, follow_redirects=False)

    result = run(None, standin_model.config(), lambda client: client.generate_image("d"), factory)
    assert_success(result)
    assert seen[0] == "POST /v1/images/generations"
    assert seen[1].startswith("GET /files/")


def test_relative_image_url_resolves_against_endpoint(standin_model: StandinServer) -> None:
    path = standin_model.model.add_file(png())
    standin_model.model.faults.append(json_response({"data": [{"url": path}]}))
    result = run(None, standin_model.config(), lambda client: client.generate_image("d"))
    assert_success(result)


def test_failed_image_download_is_an_error(standin_model: StandinServer) -> None:
    url = standin_model.root_url + "/files/missing.bin"
    standin_model.model.faults.append(json_response({"data": [{"url": url}]}))
    result = run(None, standin_model.config(), lambda client: client.generate_image("d"))
    assert result.error is not None
    assert result.error.startswith("image download failed: HTTP 404")


# Retries


@pytest.mark.parametrize("fault", ["500", "429", "timeout"])
def test_transient_fault_is_retried(standin_model: StandinServer, fault: str) -> None:
    standin_model.model.faults.append(fault)
    config = standin_model.config(timeout_seconds=0.5)
    with structlog.testing.capture_logs() as events:
        result = run(config, None, lambda client: client.chat("q"))
    assert_success(result)
    assert result.attempts == 2
    assert standin_model.model.calls[CHAT_ROUTE] == 2
    retries = [event for event in events if event["event"] == "model.retry"]
    assert len(retries) == 1
    assert retries[0]["host"] == standin_model.root_url.removeprefix("http://")
    assert retries[0]["attempt"] == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("500", "HTTP 500 after 3 attempts"), ("timeout", "timed out after 0.3 s after 3 attempts")],
)
def test_persistent_fault_gives_error_after_max_attempts(
    standin_model: StandinServer, fault: str, expected: str
) -> None:
    standin_model.model.faults.extend([fault] * 5)
    config = standin_model.config(max_attempts=3, timeout_seconds=0.3)
    with structlog.testing.capture_logs() as events:
        result = run(None, config, lambda client: client.generate_image("d"))
    assert result.error is not None
    assert result.error.startswith(expected)
    assert result.attempts == 3
    assert standin_model.model.calls[GENERATIONS_ROUTE] == 3
    assert [event["event"] for event in events] == ["model.retry", "model.retry", "model.failed"]
    assert events[-1]["attempt"] == 3


def test_retry_after_is_honoured(standin_model: StandinServer) -> None:
    standin_model.model.faults.append("429")
    standin_model.model.retry_after = "0.4"
    config = standin_model.config(backoff_max_seconds=2.0)
    started = time.perf_counter()
    result = run(config, None, lambda client: client.chat("q"))
    assert_success(result)
    assert time.perf_counter() - started >= 0.4


def test_connection_refused_is_retried_then_reported() -> None:
    config = EndpointConfig(
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        model="m",
        max_attempts=2,
        backoff_base_seconds=0.01,
    )
    result = run(config, None, lambda client: client.chat("q"))
    assert result.error == "connection refused after 2 attempts"
    assert result.attempts == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(standin_model: StandinServer, status: int) -> None:
    body = {"error": {"message": "bad request field"}}
    standin_model.model.faults.extend([json_response(body, status)] * 2)
    result = run(config := standin_model.config(), None, lambda client: client.chat("q"))
    assert config.max_attempts > 1
    assert result.error is not None
    assert result.error.startswith(f"HTTP {status}: ")
    assert "bad request field" in result.error
    assert result.attempts == 1
    assert standin_model.model.calls[CHAT_ROUTE] == 1


def test_redirect_is_not_followed(standin_model: StandinServer) -> None:
    location = standin_model.root_url + "/files/elsewhere"
    standin_model.model.faults.append(RawResponse(302, b"", {"Location": location}))
    result = run(config := standin_model.config(), None, lambda client: client.chat("q"))
    assert result.error is not None
    assert "redirects are not followed" in result.error
    assert standin_model.model.calls == {CHAT_ROUTE: 1}
    assert config.max_attempts > 1


# Malformed responses


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "a JSON list, expected an object"),
        (b'{"choices": []}', "missing choices[0]"),
        (b'{"choices": [{"text": "A"}]}', "missing choices[0].message"),
        (b'{"choices": [{"message": {"content": null}}]}', "content is null"),
        (b'{"choices": [{"message": {"content": 7}}]}', "content is a int"),
    ],
)
def test_malformed_chat_response_is_an_error(
    standin_model: StandinServer, body: bytes, expected: str
) -> None:
    standin_model.model.faults.append(RawResponse(200, body))
    result = run(standin_model.config(), None, lambda client: client.chat("q"))
    assert result.error is not None
    assert expected in result.error
    assert result.text is None
    assert result.attempts == 1


def test_malformed_fault_kind_is_an_error(standin_model: StandinServer) -> None:
    standin_model.model.faults.append("malformed")
    result = run(standin_model.config(), None, lambda client: client.chat("q"))
    assert result.error is not None
    assert "not JSON" in result.error


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"data": []}, "missing data[0]"),
        ({"data": ["x"]}, "data[0] is not an object"),
        ({"data": [{}]}, "neither b64_json nor url"),
        ({"data": [{"b64_json": "not base64!"}]}, "not valid base64"),
        ({"data": [{"b64_json": _b64(b"plain text, not an image")}]}, "Pillow"),
        ({"data": [{"b64_json": _b64(png(size=(64, 64))[:60])}]}, "Pillow"),
        ({"data": [{"url": "ftp://127.0.0.1/image.png"}]}, "invalid image URL"),
        ({"data": [{"url": "data:image/png,rawbytes"}]}, "not base64-encoded"),
    ],
)
def test_malformed_image_response_is_an_error(
    standin_model: StandinServer, data: Any, expected: str
) -> None:
    standin_model.model.faults.append(json_response(data))
    result = run(None, standin_model.config(), lambda client: client.generate_image("d"))
    assert result.error is not None
    assert expected in result.error, result.error
    assert result.image is None
    assert result.attempts == 1


def test_data_url_image_is_accepted(standin_model: StandinServer) -> None:
    url = "data:image/png;base64," + _b64(png())
    standin_model.model.faults.append(json_response({"data": [{"url": url}]}))
    result = run(None, standin_model.config(), lambda client: client.generate_image("d"))
    assert_success(result)


@pytest.mark.parametrize("chunked", [False, True])
def test_response_over_size_limit_is_an_error(standin_model: StandinServer, chunked: bool) -> None:
    body = json.dumps({"data": [{"b64_json": _b64(png(size=(64, 64)))}]}).encode()
    standin_model.model.faults.append(RawResponse(200, body + b" " * 300_000, chunked=chunked))
    config = standin_model.config(max_response_bytes=200_000)
    result = run(None, config, lambda client: client.generate_image("d"))
    assert result.error == "response larger than max_response_bytes (200000 bytes)"


def test_unsupported_media_type_sends_nothing(standin_model: StandinServer) -> None:
    result = run(standin_model.config(), None, lambda client: client.chat("q", png(), "image/tiff"))
    assert result.error is not None
    assert "unsupported media type" in result.error
    assert not standin_model.model.calls


def test_unconfigured_endpoint_is_an_error(standin_model: StandinServer) -> None:
    result = run(standin_model.config(), None, lambda client: client.generate_image("d"))
    assert result.error == "no images endpoint is configured"


# API key


def test_api_key_sent_never_logged(
    standin_model: StandinServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-test-4f8a9c2e"
    standin_model.model.api_key = key
    good = standin_model.config(api_key=key, max_attempts=2)
    with structlog.testing.capture_logs() as events, caplog.at_level(logging.DEBUG):
        standin_model.model.faults.append("500")
        ok = run(good, good, lambda client: client.chat("q"))
        edit = run(good, good, lambda client: client.edit_image(png(), "image/png", "e"))
    assert_success(ok)
    assert_success(edit)
    assert standin_model.model.authorizations == [f"Bearer {key}"] * 3
    assert events, "expected a model.retry event"

    # The stand-in repeats a wrong key in its 401 message, as some servers do.
    wrong_key = "sk-wrong-77d1e0b3"
    wrong = standin_model.config(api_key=wrong_key)
    with structlog.testing.capture_logs() as more_events, caplog.at_level(logging.DEBUG):
        refused = run(wrong, None, lambda client: client.chat("q"))
        problems = run(wrong, wrong, lambda client: client.check())
    assert refused.error is not None
    assert refused.error.startswith("HTTP 401")
    assert "[redacted]" in refused.error
    texts = [refused.error, *problems, repr(wrong), repr(good)]
    texts += [repr(event) for event in [*events, *more_events]]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        assert key not in text, text
        assert wrong_key not in text, text


# Limits


def _unlimited_client(config: EndpointConfig) -> httpx.AsyncClient:
    # The default connection limits of httpx (100) leave the limit to the client's semaphore.
    return httpx.AsyncClient(timeout=config.timeout_seconds)


@pytest.mark.parametrize("factory", [None, _unlimited_client])
def test_concurrency_limit_is_respected(
    standin_model: StandinServer, factory: Callable[[EndpointConfig], httpx.AsyncClient] | None
) -> None:
    standin_model.model.delay = 0.15
    prompts = [f"question {number}" for number in range(9)]

    async def many(client: ModelClient) -> list[CallResult]:
        return list(await asyncio.gather(*(client.chat(prompt) for prompt in prompts)))

    results = run(standin_model.config(concurrency=3), None, many, factory)
    assert all(result.error is None for result in results)
    assert standin_model.model.max_in_flight == 3
    assert all(standin_model.model.calls_for(prompt) == 1 for prompt in prompts)


def test_rate_limit_spaces_requests(standin_model: StandinServer) -> None:
    async def many(client: ModelClient) -> list[CallResult]:
        return list(await asyncio.gather(*(client.chat(f"q{n}") for n in range(6))))

    started = time.perf_counter()
    results = run(standin_model.config(requests_per_minute=1200), None, many)
    elapsed = time.perf_counter() - started
    assert all(result.error is None for result in results)
    assert elapsed >= 0.24  # five intervals of 60 / 1200 s


# Check


def test_check_passes_on_working_endpoints(standin_model: StandinServer) -> None:
    config = standin_model.config()
    assert run(config, config, lambda client: client.check()) == []
    assert standin_model.model.calls == {CHAT_ROUTE: 1, GENERATIONS_ROUTE: 1}
    prompts = [request.prompt for request in standin_model.model.requests]
    assert sorted(prompts) == ["Reply with OK.", "a red circle"]


def test_check_reports_wrong_path(standin_model: StandinServer) -> None:
    config = standin_model.config(base_url=standin_model.root_url + "/v2")
    problems = run(config, config, lambda client: client.check())
    assert len(problems) == 2
    assert problems[0].startswith(f"chat endpoint {standin_model.root_url}/v2 (model ")
    assert problems[1].startswith(f"images endpoint {standin_model.root_url}/v2 (model ")
    assert all("HTTP 404" in problem for problem in problems)


def test_check_reports_wrong_model_with_body_excerpt(standin_model: StandinServer) -> None:
    chat = standin_model.config(model="no-such-model")
    problems = run(chat, standin_model.config(), lambda client: client.check())
    [problem] = problems
    assert problem.startswith("chat endpoint ")
    assert "'no-such-model'" in problem
    assert "HTTP 404" in problem
    assert "does not exist" in problem


def test_check_reports_connection_refused_without_retrying() -> None:
    url = f"http://user:secret@127.0.0.1:{closed_port()}/v1"
    config = EndpointConfig(base_url=url, model="m", backoff_base_seconds=5)
    started = time.perf_counter()
    problems = run(None, config, lambda client: client.check())
    assert time.perf_counter() - started < 3
    [problem] = problems
    assert problem.startswith("images endpoint http://127.0.0.1:")
    assert "connection refused after 1 attempt" in problem
    assert "secret" not in problem


def test_check_makes_one_attempt_and_reports_malformed(standin_model: StandinServer) -> None:
    standin_model.model.faults.extend(["500", "malformed"])
    config = standin_model.config()
    problems = run(config, None, lambda client: client.check())
    assert problems == [
        f"chat endpoint {standin_model.base_url} (model 'standin-unified'): "
        "HTTP 500 after 1 attempt: "
        '{"error":{"message":"injected server error","type":"server_error","code":500}}'
    ]
    problems = run(config, None, lambda client: client.check())
    assert len(problems) == 1
    assert "not JSON" in problems[0]


# Configuration


def test_config_rejects_invalid_values() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        EndpointConfig(base_url="http://127.0.0.1:1/v1", model="m", concurrency=0)
    with pytest.raises(ValueError, match="base_url"):
        EndpointConfig(base_url="127.0.0.1:1/v1", model="m")
    with pytest.raises(ValueError, match="max_attempts"):
        EndpointConfig(base_url="http://127.0.0.1:1/v1", model="m", max_attempts=0)


def test_exception_from_client_factory_transport_is_an_error(
    standin_model: StandinServer,
) -> None:
    class PolicyError(Exception):
        pass

    def refuse(request: httpx.Request) -> httpx.Response:
        raise PolicyError("address not allowed")

    def factory(config: EndpointConfig) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(refuse))

    result = run(standin_model.config(), None, lambda client: client.chat("q"), factory)
    assert result.error == "request failed (PolicyError: address not allowed)"
    assert result.attempts == 1
