"""The web submission form: messages on the page for bad input, dry runs, and the redirect."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Submission
from tests.api.test_accounts import csrf_of, sign_up
from tests.builders import answered, as_json


def form_post(client: TestClient, data: bytes, **fields: str):  # type: ignore[no-untyped-def]
    csrf = csrf_of(client.get("/submit").text)
    values = {
        "model_name": "Form Model",
        "model_kind": "unified",
        "protocol": "direct",
        "csrf": csrf,
    }
    values.update(fields)
    return client.post("/submit", data=values, files={"predictions": ("GEU_direct.json", data)})


def submissions(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Submission)) or 0


def test_submit_page_requires_sign_in(client: TestClient) -> None:
    response = client.get("/submit", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/submit"


def test_form_errors_are_listed_on_page(client: TestClient, db_session: Session) -> None:
    sign_up(client, "form@example.org")
    items = answered("GEU_direct")
    items[3]["response"] = 42
    items[5]["index"] = 1234

    response = form_post(client, as_json(items))

    assert response.status_code == 422
    assert "nothing was stored" in response.text
    assert "item index 1234" in response.text
    assert "<code>response</code> is a number" in response.text
    assert 'value="Form Model"' in response.text  # the form keeps what was typed
    assert submissions(db_session) == 0


def test_form_field_error_is_shown(client: TestClient, db_session: Session) -> None:
    sign_up(client, "form-field@example.org")

    response = form_post(client, as_json(answered("GEU_direct")), protocol="sideways")

    assert response.status_code == 422
    assert "protocol: &#39;sideways&#39; is not one of direct, stepwise" in response.text
    assert submissions(db_session) == 0


def test_form_dry_run_stores_nothing(client: TestClient, db_session: Session) -> None:
    sign_up(client, "form-dry@example.org")

    response = form_post(client, as_json(answered("GEU_direct")), dry_run="1")

    assert response.status_code == 200
    assert "The file is valid" in response.text
    assert submissions(db_session) == 0


def test_form_submit_redirects_to_submission(client: TestClient, db_session: Session) -> None:
    sign_up(client, "form-ok@example.org")

    response = form_post(client, as_json(answered("GEU_direct")))

    assert response.status_code == 200
    assert "/submissions/" in str(response.url)
    assert 'id="status">queued' in response.text
    assert submissions(db_session) == 1


def test_form_without_file(client: TestClient, db_session: Session) -> None:
    sign_up(client, "form-nofile@example.org")
    csrf = csrf_of(client.get("/submit").text)

    response = client.post(
        "/submit",
        data={"model_name": "X", "model_kind": "unified", "protocol": "direct", "csrf": csrf},
    )

    assert response.status_code == 422
    assert "predictions: choose a prediction file" in response.text
