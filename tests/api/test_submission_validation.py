"""Bad uploads get a 4xx that names the item and field, and store nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models import Model, Prediction, Submission
from tests.builders import answered, as_json, as_jsonl

FORM = {"model_name": "Validator Test Model", "model_kind": "unified", "protocol": "direct"}


def post(
    client: TestClient,
    auth: dict[str, str],
    data: bytes,
    name: str = "GEU_direct.json",
    path: str = "/api/v1/submissions",
    **fields: Any,
) -> Any:
    form = {**FORM, **fields}
    return client.post(path, headers=auth, data=form, files={"predictions": (name, data)})


def row_counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(Submission)) or 0,
        session.scalar(select(func.count()).select_from(Prediction)) or 0,
        session.scalar(select(func.count()).select_from(Model).where(~Model.is_reference)) or 0,
    )


def errors_of(response: Any) -> list[dict[str, Any]]:
    return response.json()["report"]["errors"]


def test_valid_upload_is_accepted(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    response = post(client, auth, as_json(answered("GEU_direct")))

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["items"] == len(answered("GEU_direct"))
    assert row_counts(db_session) == (1, len(answered("GEU_direct")), 1)


def test_jsonl_upload_is_accepted(client: TestClient, auth: dict[str, str]) -> None:
    response = post(client, auth, as_jsonl(answered("GEU_direct")), name="GEU_direct.jsonl")

    assert response.status_code == 202, response.text
    assert response.json()["report"]["file_format"] == "jsonl"


def test_upload_without_index_matches_by_content(client: TestClient, auth: dict[str, str]) -> None:
    items = answered("GEU_direct")
    for item in items:
        del item["index"]
    items.reverse()

    response = post(client, auth, as_json(items))

    assert response.status_code == 202, response.text
    assert response.json()["matched_by"] == "content"


def rejected(
    client: TestClient,
    auth: dict[str, str],
    db_session: Session,
    data: bytes,
    name: str = "GEU_direct.json",
    **fields: Any,
) -> Any:
    before = row_counts(db_session)
    response = post(client, auth, data, name=name, **fields)
    assert 400 <= response.status_code < 500, response.text
    assert row_counts(db_session) == before
    return response


def test_unknown_index_names_item(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    items = answered("GEU_direct")
    items[2]["index"] = 999

    response = rejected(client, auth, db_session, as_json(items))

    errors = errors_of(response)
    assert response.status_code == 422
    assert any(e["field"] == "index" and "999" in e["item"] for e in errors)
    assert "unknown item" in response.json()["detail"]


def test_duplicate_item_is_rejected(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    items = answered("GEU_direct")
    items.append(copy.deepcopy(items[0]))

    response = rejected(client, auth, db_session, as_json(items))

    messages = [e["message"] for e in errors_of(response)]
    assert any(
        "duplicate item" in message and f"entries 1 and {len(items)}" in message
        for message in messages
    )


def test_missing_items_are_listed(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    items = answered("GEU_direct")
    dropped = [items[1]["index"], items[3]["index"]]
    del items[3], items[1]

    response = rejected(client, auth, db_session, as_json(items))

    report = response.json()["report"]
    assert report["missing_count"] == 2
    assert report["missing_items"] == [f"index {index}" for index in dropped]
    assert "2 of" in report["errors"][0]["message"]


def test_missing_items_allowed_score_as_wrong(client: TestClient, auth: dict[str, str]) -> None:
    items = answered("GEU_direct")[1:]

    response = post(client, auth, as_json(items), allow_missing="true")

    assert response.status_code == 202, response.text
    assert response.json()["missing_items"] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, "a number"), (None, "null"), ({"text": "A"}, "an object"), ([], "an array")],
    ids=["number", "null", "object", "empty-list"],
)
def test_wrong_response_type_names_field(
    client: TestClient, auth: dict[str, str], db_session: Session, value: Any, expected: str
) -> None:
    items = answered("GEU_direct")
    items[4]["response"] = value

    response = rejected(client, auth, db_session, as_json(items))

    error = errors_of(response)[0]
    assert error["field"] == "response"
    assert f"index {items[4]['index']}" in error["item"]
    assert expected in error["message"]


def test_missing_response_field(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    items = answered("GEU_direct")
    del items[0]["response"]

    response = rejected(client, auth, db_session, as_json(items))

    assert errors_of(response)[0]["field"] == "response"
    assert "missing `response`" in errors_of(response)[0]["message"]


def test_invalid_utf8_is_rejected(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    data = as_json(answered("GEU_direct")).replace(b'"response"', b'"resp\xff\xfeonse"', 1)

    response = rejected(client, auth, db_session, data)

    assert "invalid UTF-8 at byte" in response.json()["detail"]


def test_invalid_json_reports_line(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    data = json.dumps(answered("GEU_direct"), indent=1).encode()[:-20]

    response = rejected(client, auth, db_session, data)

    assert "invalid JSON at line" in response.json()["detail"]


def test_invalid_jsonl_reports_line(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    lines = as_jsonl(answered("GEU_direct")).split(b"\n")
    lines[3] = lines[3][:-5]

    response = rejected(client, auth, db_session, b"\n".join(lines), name="GEU_direct.jsonl")

    assert "line 4" in response.json()["detail"]


def test_top_level_object_is_rejected(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    response = rejected(client, auth, db_session, b'{"items": []}')

    assert "expected an array" in response.json()["detail"]


def test_oversize_file_gets_413(
    client: TestClient, auth: dict[str, str], db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 1024)

    response = rejected(client, auth, db_session, as_json(answered("GEU_direct")))

    assert response.status_code == 413
    assert "predictions" in response.json()["detail"]
    assert "1 KiB limit" in response.json()["detail"]


def test_step_file_under_direct_protocol(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    response = rejected(client, auth, db_session, as_json(answered("GEU_step")))

    error = errors_of(response)[0]
    assert error["field"] == "edit_prompt"
    assert "protocol stepwise" in error["message"]


def test_changed_prompt_is_rejected(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    items = answered("GEU_direct")
    items[0]["evaluation_prompt"] += " (edited)"

    response = rejected(client, auth, db_session, as_json(items))

    assert errors_of(response)[0]["field"] == "evaluation_prompt"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("model_kind", "giant", "model_kind"),
        ("protocol", "step", "protocol"),
        ("model_name", "   ", "model_name"),
        ("link", "javascript:alert(1)", "link"),
        ("axis", "XYZ", "axis"),
    ],
)
def test_bad_form_field_is_named(
    client: TestClient,
    auth: dict[str, str],
    db_session: Session,
    field: str,
    value: str,
    expected: str,
) -> None:
    response = rejected(client, auth, db_session, as_json(answered("GEU_direct")), **{field: value})

    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{expected}:")


def test_missing_form_field_is_named(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/submissions",
        headers=auth,
        data={"model_kind": "unified", "protocol": "direct"},
        files={"predictions": ("GEU_direct.json", as_json(answered("GEU_direct")))},
    )

    assert response.status_code == 422
    assert "model_name" in response.json()["detail"]


def test_missing_token_gets_401(client: TestClient, db_session: Session) -> None:
    before = row_counts(db_session)

    response = post(client, {}, as_json(answered("GEU_direct")))

    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    assert row_counts(db_session) == before


def test_wrong_token_gets_401(client: TestClient) -> None:
    response = post(client, {"Authorization": "Bearer rub_nope"}, as_json(answered("GEU_direct")))

    assert response.status_code == 401


def test_answers_in_upload_are_ignored(client: TestClient, auth: dict[str, str]) -> None:
    items = answered("GEU_direct")
    for item in items:
        item["answer"] = "Z"

    response = post(client, auth, as_json(items), path="/api/v1/submissions/validate")

    report = response.json()
    assert report["valid"] is True
    assert report["errors"] == []


def test_dry_run_stores_nothing(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    before = row_counts(db_session)
    good = post(client, auth, as_json(answered("GEU_direct")), path="/api/v1/submissions/validate")
    items = answered("GEU_direct")
    items[0]["index"] = 555
    bad = post(client, auth, as_json(items), path="/api/v1/submissions/validate")

    assert good.status_code == 200
    assert good.json()["valid"] is True
    assert bad.status_code == 200
    assert bad.json()["valid"] is False
    assert bad.json()["errors"][0]["field"] == "index"
    assert row_counts(db_session) == before


def test_model_name_of_another_account(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    from tests.builders import create_user_with_token

    other = {"Authorization": f"Bearer {create_user_with_token(db_session, 'other@example.org')}"}
    assert post(client, auth, as_json(answered("GEU_direct"))).status_code == 202

    response = rejected(client, other, db_session, as_json(answered("GEU_direct")))

    assert response.status_code == 409
    assert "belongs to another account" in response.json()["detail"]


def test_reference_model_name_is_reserved(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    response = rejected(
        client, auth, db_session, as_json(answered("GEU_direct")), model_name="BAGEL-7B"
    )

    assert response.status_code == 409
    assert "reference row" in response.json()["detail"]


def test_dry_run_reports_taken_model_name(client: TestClient, auth: dict[str, str]) -> None:
    response = post(
        client,
        auth,
        as_json(answered("GEU_direct")),
        path="/api/v1/submissions/validate",
        model_name="BAGEL-7B",
    )

    assert response.status_code == 409
    assert response.json()["detail"].startswith("model_name:")


def test_step_without_edit_image_warns(client: TestClient, auth: dict[str, str]) -> None:
    items = answered("GEU_step")
    for item in items[:3]:
        del item["edit_image"]

    response = post(
        client, auth, as_json(items), path="/api/v1/submissions/validate", protocol="stepwise"
    )

    report = response.json()
    assert report["valid"] is True
    assert any(
        w["field"] == "edit_image" and w["message"].startswith("3 of") for w in report["warnings"]
    )


def test_withdraw_removes_rows(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    before = row_counts(db_session)
    submission_id = post(client, auth, as_json(answered("GEU_direct"))).json()["id"]

    deleted = client.delete(f"/api/v1/submissions/{submission_id}", headers=auth)

    assert deleted.status_code == 204
    assert client.get(f"/api/v1/submissions/{submission_id}").status_code == 404
    assert row_counts(db_session)[:2] == before[:2]


def test_withdraw_of_others_is_404(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    from tests.builders import create_user_with_token

    submission_id = post(client, auth, as_json(answered("GEU_direct"))).json()["id"]
    other = {"Authorization": f"Bearer {create_user_with_token(db_session, 'thief@example.org')}"}

    response = client.delete(f"/api/v1/submissions/{submission_id}", headers=other)

    assert response.status_code == 404
    assert client.get(f"/api/v1/submissions/{submission_id}").status_code == 200


def test_timestamps_carry_utc_offset(client: TestClient, auth: dict[str, str]) -> None:
    submission_id = post(client, auth, as_json(answered("GEU_direct"))).json()["id"]

    body = client.get(f"/api/v1/submissions/{submission_id}").json()

    assert body["created_at"].endswith("+00:00")


def test_file_name_of_other_protocol_is_pointed_out(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    response = rejected(
        client,
        auth,
        db_session,
        as_json(answered("GEU_direct")),
        name="GEU_direct.json",
        protocol="stepwise",
    )

    first = errors_of(response)[0]
    assert first["field"] == "protocol"
    assert "names GEU_direct" in first["message"]
    assert "protocol direct" in first["message"]
