"""The leaderboard and benchmark endpoints and pages never show answers or questions."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.builders import demo_file


def test_leaderboard_lists_reference_rows(client: TestClient) -> None:
    body = client.get("/api/v1/leaderboard").json()

    bagel = [row for row in body["rows"] if row["model"] == "BAGEL-7B"]
    assert {row["protocol"] for row in bagel} == {"direct", "stepwise"}
    assert all(row["source"] == "reference" for row in bagel)
    gain = bagel[0]["stepwise_minus_direct"]["UEG"]
    assert gain["value"] == 15.0
    assert gain["low"] < 15.0 < gain["high"]
    assert "Table 2" in bagel[0]["reported_by"]


def test_leaderboard_rejects_unknown_sort(client: TestClient) -> None:
    response = client.get("/api/v1/leaderboard", params={"sort": "bogus"})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("sort:")


def test_leaderboard_filters_protocol_and_kind(client: TestClient) -> None:
    rows = client.get(
        "/api/v1/leaderboard", params={"protocol": "stepwise", "kind": "unified"}
    ).json()["rows"]

    assert rows
    assert {row["protocol"] for row in rows} == {"stepwise"}
    assert {row["model_kind"] for row in rows} == {"unified"}


def test_no_response_or_page_shows_answers(client: TestClient) -> None:
    questions = [q["question"] for item in demo_file("UEG_direct") for q in item["question_list"]]
    pages = [
        client.get("/api/v1/benchmark").text,
        client.get("/api/v1/leaderboard").text,
        client.get("/").text,
        client.get("/about").text,
        client.get("/api/openapi.json").text,
    ]

    for page in pages:
        assert '"answer"' not in page
        assert "question_list" not in page
        for question in questions[:10]:
            assert question not in page


def test_pages_render(client: TestClient) -> None:
    for path in ("/", "/about", "/signin", "/signup", "/models/bagel-7b", "/?sort=GEU&order=asc"):
        response = client.get(path)
        assert response.status_code == 200, path


def test_unknown_pages_are_404(client: TestClient) -> None:
    assert client.get("/models/no-such-model").status_code == 404
    assert client.get("/submissions/not-a-uuid").status_code == 404
    assert client.get("/api/v1/submissions/00000000-0000-0000-0000-000000000000").status_code == 404


def test_api_docs_load_only_local_assets(client: TestClient) -> None:
    page = client.get("/api/docs").text

    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert "cdn." not in page
    assert "https://" not in page
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_oversized_ids_are_rejected_not_crashed(client: TestClient, auth: dict[str, str]) -> None:
    huge = "99999999999999999999999"

    endpoint = client.get(f"/api/v1/endpoints/{huge}", headers=auth)
    board = client.get(f"/api/v1/leaderboard?version={huge}")
    page = client.get(f"/?page={huge}")

    assert endpoint.status_code == 422
    assert "endpoint_id" in endpoint.json()["detail"]
    assert board.status_code == 422
    assert "version" in board.json()["detail"]
    assert page.status_code == 422
