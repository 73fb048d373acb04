"""The judge client against the stand-in judge: retries, faults, limits and secrets."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from datetime import UTC, datetime

import httpx
import pytest
import structlog

from app.judging.client import (
    JudgeClient,
    JudgeConfig,
    JudgeRequest,
    JudgeResult,
    build_messages,
    parse_retry_after,
)
from tests.judging.conftest import ReferenceQuestion, StandinServer


def judge_all(config: JudgeConfig, requests: list[JudgeRequest]) -> list[JudgeResult]:
    async def run() -> list[JudgeResult]:
        async with JudgeClient(config) as client:
            return await client.judge_many(requests)

    return asyncio.run(run())


def timed_judge_all(
    config: JudgeConfig, requests: list[JudgeRequest]
) -> tuple[list[JudgeResult], float]:
    started = time.perf_counter()
    results = judge_all(config, requests)
    return results, time.perf_counter() - started


def test_build_messages_shape() -> None:
    messages = build_messages("Is the background white?", "data:image/png;base64,AAAA")
    assert messages[0]["role"] == "system"
    user = messages[1]
    assert user["role"] == "user"
    image_part, text_part = user["content"]
    assert image_part == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert text_part["text"].startswith("Is the background white?")


def test_config_rejects_invalid_values() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        JudgeConfig(base_url="http://127.0.0.1:1/v1", model="m", concurrency=0)
    with pytest.raises(ValueError, match="base_url"):
        JudgeConfig(base_url="127.0.0.1:1/v1", model="m")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 01 Jan 2031 00:00:03 GMT", 3.0),
        ("Tue, 31 Dec 2030 23:59:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2031, 1, 1, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


def test_faults_never_give_wrong_answers(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    standin.control(
        fault_rate=0.3,
        faults=["500", "429", "timeout", "garbage"],
        seed=1,
        timeout_fault_seconds=1.5,
    )
    questions = reference_questions * 2
    config = standin.config(timeout_seconds=1.0, concurrency=16)
    results, elapsed = timed_judge_all(config, [q.request for q in questions])

    faults = standin.stats()["faults"]
    for kind in ("500", "429", "timeout", "garbage"):
        assert faults[kind] > 0, f"no {kind} fault was injected: {faults}"
    for question, result in zip(questions, results, strict=True):
        if result.answer is None:
            assert result.error, result
        else:
            assert result.error is None, result
            assert result.answer is question.expected, (result, question.request.question)
    answered = sum(result.answer is not None for result in results)
    assert answered >= 0.9 * len(results)
    assert any(result.attempts > 1 for result in results)
    assert elapsed < 30


def test_retry_after_is_honoured(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    question = reference_questions[0]
    standin.control(next_faults=["429"])
    config = standin.config(backoff_base_seconds=0.01, backoff_max_seconds=5.0)
    [result], elapsed = timed_judge_all(config, [question.request])

    assert result.answer is question.expected
    assert result.attempts == 2
    # The stand-in sends Retry-After: 1, so the retry waits a full second, not the 10 ms backoff.
    assert elapsed >= 0.95


def test_retry_after_is_capped(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    question = reference_questions[0]
    standin.control(next_faults=["429"])
    config = standin.config(backoff_base_seconds=0.01, backoff_max_seconds=0.2)
    [result], elapsed = timed_judge_all(config, [question.request])

    assert result.answer is question.expected
    assert result.attempts == 2
    assert elapsed < 0.8


def test_client_error_not_retried(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    config = standin.config(model="no-such-model", max_attempts=5)
    [result] = judge_all(config, [reference_questions[0].request])

    assert result.answer is None
    assert result.attempts == 1
    assert result.error is not None and result.error.startswith("HTTP 404: ")
    assert "no-such-model" in result.error
    assert standin.stats()["requests"] == 1


def test_server_errors_exhaust_attempts(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    standin.control(next_faults=["500", "500", "500"])
    config = standin.config(max_attempts=3)
    [result] = judge_all(config, [reference_questions[0].request])

    assert result.answer is None
    assert result.error == "HTTP 500 after 3 attempts"
    assert result.attempts == 3
    assert standin.stats()["requests"] == 3


def test_timeouts_exhaust_attempts(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    standin.control(next_faults=["timeout", "timeout"], timeout_fault_seconds=2)
    config = standin.config(max_attempts=2, timeout_seconds=0.3)
    [result] = judge_all(config, [reference_questions[0].request])

    assert result.answer is None
    assert result.error == "timed out after 2 attempts"
    assert result.attempts == 2


def test_unreadable_reply_asked_again(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    question = reference_questions[0]
    standin.control(next_faults=["garbage"])
    [result] = judge_all(standin.config(unreadable_retries=1), [question.request])
    assert result.answer is question.expected
    assert result.attempts == 2

    standin.control(next_faults=["garbage", "garbage"])
    [result] = judge_all(standin.config(unreadable_retries=1), [question.request])
    assert result.answer is None
    assert result.raw_reply == "The image shows some shapes on a background."
    assert result.error == "unreadable reply: 'The image shows some shapes on a background.'"


def test_connection_refused_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = JudgeConfig(
        base_url=f"http://127.0.0.1:{port}/v1",
        model="m",
        max_attempts=3,
        backoff_base_seconds=0.01,
    )
    request = JudgeRequest("k", b"\x89PNG", "image/png", "Is the background white?")
    [result] = judge_all(config, [request])
    assert result.answer is None
    assert result.error == "connection error (ConnectError) after 3 attempts"
    assert result.attempts == 3


def test_unsupported_media_type() -> None:
    config = JudgeConfig(base_url="http://127.0.0.1:9/v1", model="m")
    request = JudgeRequest("k", b"GIF8", "text/plain", "Is the background white?")
    [result] = judge_all(config, [request])
    assert result.attempts == 0
    assert result.error is not None and "unsupported media type 'text/plain'" in result.error


def test_concurrency_limit_holds(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    standin.control(delay=0.2)
    requests = [q.request for q in reference_questions[:20]]
    results, elapsed = timed_judge_all(standin.config(concurrency=4), requests)

    assert all(result.error is None for result in results)
    observed = standin.stats()["max_concurrent_observed"]
    assert observed <= 4
    assert observed == 4, "the client never filled its 4 slots"
    assert elapsed >= 20 / 4 * 0.2 * 0.9


def test_rate_limit_holds(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    requests = [q.request for q in reference_questions[:16]]
    config = standin.config(requests_per_second=10.0, concurrency=16)
    results, elapsed = timed_judge_all(config, requests)

    assert all(result.error is None for result in results)
    # 16 requests spaced 0.1 s apart take at least 1.5 s from the first to the last.
    assert elapsed >= 1.5 * 0.9
    assert elapsed < 4.0


def test_on_result_called_for_each(
    standin: StandinServer, reference_questions: list[ReferenceQuestion]
) -> None:
    seen: list[str] = []
    requests = [q.request for q in reference_questions[:10]]

    async def run() -> list[JudgeResult]:
        async with JudgeClient(standin.config()) as client:
            return await client.judge_many(requests, on_result=lambda r: seen.append(r.key))

    results = asyncio.run(run())
    assert sorted(seen) == sorted(r.key for r in requests)
    assert [r.key for r in results] == [r.key for r in requests]


def test_api_key_sent_and_never_logged(
    standin: StandinServer,
    reference_questions: list[ReferenceQuestion],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    api_key = "sk-test-" + secrets.token_hex(16)
    wrong_key = "sk-wrong-" + secrets.token_hex(16)
    standin.control(api_key=api_key)
    question = reference_questions[0]
    caplog.set_level(logging.DEBUG)

    with structlog.testing.capture_logs() as events:
        # The stand-in rejects requests without the right bearer token with HTTP 401.
        [unauthenticated] = judge_all(standin.config(), [question.request])
        standin.control(next_faults=["500"])
        [accepted] = judge_all(standin.config(api_key=api_key), [question.request])
        [rejected] = judge_all(standin.config(api_key=wrong_key), [question.request])

    assert unauthenticated.error is not None and unauthenticated.error.startswith("HTTP 401")
    assert accepted.answer is question.expected
    assert accepted.attempts == 2
    assert rejected.error is not None and rejected.error.startswith("HTTP 401")
    assert rejected.attempts == 1

    names = [event["event"] for event in events]
    assert "judge.retry" in names
    assert "judge.failed" in names
    captured = capfd.readouterr()
    log_texts = [repr(event) for event in events]
    log_texts += [record.getMessage() for record in caplog.records]
    log_texts += [caplog.text, captured.out, captured.err]
    for text in log_texts:
        assert api_key not in text
        assert wrong_key not in text


def test_bearer_header_sent() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        body = {"choices": [{"message": {"role": "assistant", "content": "No."}}]}
        return httpx.Response(200, json=body)

    async def run() -> list[JudgeResult]:
        config = JudgeConfig(base_url="http://judge.invalid/v1", model="m", api_key="sk-abc")
        client = JudgeClient(config, transport=httpx.MockTransport(handler))
        async with client:
            request = JudgeRequest("k", b"\x89PNG", "image/png", "Is the background white?")
            return await client.judge_many([request])

    [result] = asyncio.run(run())
    assert seen == ["Bearer sk-abc"]
    assert result.answer is False
    assert result.prompt_tokens is None
