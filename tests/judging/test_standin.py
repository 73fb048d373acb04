"""The stand-in judge: pixel reading of the demo pictures and its chat completions API."""

from __future__ import annotations

import asyncio
import base64
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image, ImageDraw

from app.judging.client import JudgeClient, JudgeRequest, build_messages, image_data_url
from app.judging.standin import (
    MODEL_NAME,
    UNREADABLE_REPLY,
    Scene,
    analyse_image,
    answer_question,
    find_question,
    parse_args,
)
from tests.judging.conftest import REFERENCE_FILES, StandinServer, load_reference_questions


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def chat_body(question: str, image: bytes, media_type: str = "image/png") -> dict[str, object]:
    return {
        "model": MODEL_NAME,
        "messages": build_messages(question, image_data_url(image, media_type)),
        "temperature": 0,
    }


@pytest.mark.parametrize("file_name", REFERENCE_FILES)
def test_reference_pictures_from_pixels(file_name: str) -> None:
    questions = load_reference_questions(file_name)
    assert len(questions) == 66
    scenes: dict[bytes, Scene] = {}
    for question in questions:
        image = question.request.image
        if image not in scenes:
            scenes[image] = analyse_image(image)
        scene = scenes[image]
        answer = answer_question(question.request.question, scene)
        expected = "yes" if question.expected else "no"
        assert answer == expected, (question.request.key, question.request.question, scene)


@pytest.mark.parametrize("quality", [60, 90])
def test_reference_pictures_as_jpeg(quality: int) -> None:
    scenes: dict[bytes, Scene] = {}
    for question in load_reference_questions():
        image = question.request.image
        if image not in scenes:
            buffer = io.BytesIO()
            Image.open(io.BytesIO(image)).convert("RGB").save(buffer, "JPEG", quality=quality)
            scenes[image] = analyse_image(buffer.getvalue())
        answer = answer_question(question.request.question, scenes[image])
        assert answer == ("yes" if question.expected else "no"), question.request.key


def test_shape_kinds_and_background() -> None:
    picture = Image.new("RGB", (300, 200), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((20, 20, 69, 69), fill=(30, 70, 220))
    draw.ellipse((120, 20, 169, 69), fill=(220, 30, 30))
    draw.polygon([(245, 20), (270, 69), (220, 69)], fill=(30, 160, 50))
    draw.ellipse((20, 120, 69, 169), fill=(220, 30, 30))
    scene = analyse_image(png_bytes(picture))

    found = sorted((shape.colour, shape.kind) for shape in scene.shapes)
    assert found == [
        ("blue", "square"),
        ("green", "triangle"),
        ("red", "circle"),
        ("red", "circle"),
    ]
    assert scene.background_white
    assert answer_question("Are there exactly 2 red circles in the image?", scene) == "yes"
    assert answer_question("Is the blue square to the left of the green triangle?", scene) == "yes"
    assert answer_question("Is the green triangle above the blue square?", scene) == "no"
    # Two red circles: a relation needs each shape exactly once.
    assert answer_question("Is the red circle above the blue square?", scene) == "no"


def test_background_not_white() -> None:
    picture = Image.new("RGB", (100, 100), (0, 0, 0))
    scene = analyse_image(png_bytes(picture))
    assert not scene.background_white
    assert answer_question("Is the background white?", scene) == "no"


def test_invalid_image_raises() -> None:
    with pytest.raises(ValueError, match="invalid image data"):
        analyse_image(b"not an image")


def test_find_question_in_longer_text() -> None:
    text = "Look at the picture.\nQuestion: Is there a red circle in the image?\nReply yes or no."
    assert find_question(text) == "Is there a red circle in the image?"
    assert find_question("Is the sky blue?") is None
    two = "Is there a red circle in the image? Is there a blue square in the image?"
    assert find_question(two) is None


def test_parse_args_faults() -> None:
    args = parse_args(["--fault-rate", "0.3", "--faults", "500,timeout", "--seed", "1"])
    assert args.faults == ("500", "timeout")
    assert args.fault_rate == 0.3
    with pytest.raises(SystemExit):
        parse_args(["--faults", "500,boom"])


def test_reference_pictures_over_http(standin: StandinServer, reference_questions: list) -> None:
    async def run() -> list:
        async with JudgeClient(standin.config(concurrency=8)) as client:
            return await client.judge_many([q.request for q in reference_questions])

    results = asyncio.run(run())
    assert [r.key for r in results] == [q.request.key for q in reference_questions]
    for question, result in zip(reference_questions, results, strict=True):
        assert result.error is None, result
        assert result.answer is question.expected, (result, question.request.question)
        assert result.attempts == 1
        assert result.prompt_tokens is not None and result.prompt_tokens > 0
        assert result.completion_tokens is not None
    assert standin.stats()["answered"] == len(reference_questions)


def test_question_outside_grammar(standin: StandinServer, reference_questions: list) -> None:
    image = reference_questions[0].request.image
    request = JudgeRequest("odd", image, "image/png", "How many circles are there?")

    async def run() -> list:
        async with JudgeClient(standin.config(unreadable_retries=1)) as client:
            return await client.judge_many([request])

    [result] = asyncio.run(run())
    assert result.answer is None
    assert result.raw_reply == UNREADABLE_REPLY
    assert result.error is not None and result.error.startswith("unreadable reply")
    assert result.attempts == 2
    assert standin.stats()["unreadable"] == 2


def test_models_endpoint(standin: StandinServer) -> None:
    response = httpx.get(f"{standin.base_url}/models")
    assert response.status_code == 200
    assert [model["id"] for model in response.json()["data"]] == [MODEL_NAME]


def test_remote_image_url_rejected(standin: StandinServer) -> None:
    body = chat_body("Is the background white?", b"")
    body["messages"][1]["content"][0]["image_url"]["url"] = "http://127.0.0.1:9/x.png"  # type: ignore[index]
    response = httpx.post(f"{standin.base_url}/chat/completions", json=body)
    assert response.status_code == 400
    assert "data URL" in response.json()["error"]["message"]


def test_invalid_image_is_400(standin: StandinServer) -> None:
    body = chat_body("Is the background white?", b"not an image")
    response = httpx.post(f"{standin.base_url}/chat/completions", json=body)
    assert response.status_code == 400
    assert "invalid image data" in response.json()["error"]["message"]


def test_completion_format(standin: StandinServer, reference_questions: list) -> None:
    question = reference_questions[0]
    body = chat_body(question.request.question, question.request.image)
    response = httpx.post(f"{standin.base_url}/chat/completions", json=body)
    assert response.status_code == 200
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["model"] == MODEL_NAME
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "yes"}
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_over_limit_gets_429(standin: StandinServer, reference_questions: list) -> None:
    standin.control(max_concurrent=2, delay=0.5)
    question = reference_questions[0]
    body = chat_body(question.request.question, question.request.image)

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{standin.base_url}/chat/completions", json=body, timeout=10)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(post, range(6)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) >= 2
    assert 429 in statuses
    rejected = [response for response in responses if response.status_code == 429]
    assert all(response.headers["Retry-After"] == "1" for response in rejected)
    assert standin.stats()["rejected_over_limit"] == len(rejected)


def test_control_rejects_invalid(standin: StandinServer) -> None:
    response = httpx.post(f"{standin.root_url}/control", json={"fault_rate": 2})
    assert response.status_code == 400
    response = httpx.post(f"{standin.root_url}/control", json={"faults": ["boom"]})
    assert response.status_code == 400
    response = httpx.post(f"{standin.root_url}/control", json={"colour": "red"})
    assert response.status_code == 400


def test_data_url_round_trip() -> None:
    url = image_data_url(b"\x89PNG", "image/png")
    assert url == "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
