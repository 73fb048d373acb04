"""UEG uploads: the images travel as a zip or as files; bad archives are rejected whole."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models import Prediction, Submission

BASELINES = Path(get_settings().demo_baselines_path)
FORM = {
    "model_name": "UEG Upload Model",
    "model_kind": "unified",
    "protocol": "direct",
    "axis": "UEG",
}


def result_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((BASELINES / "UEG_direct.partial.json").read_text())
    return items


def good_zip(extra: dict[str, bytes] | None = None, root: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for item in result_items():
            path = BASELINES / item["generated_image"]
            if path.is_file():
                archive.write(path, root + item["generated_image"])
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def post(
    client: TestClient,
    auth: dict[str, str],
    files: list[tuple[str, Any]],
    path: str = "/api/v1/submissions",
    **fields: str,
) -> Any:
    return client.post(path, headers=auth, data={**FORM, **fields}, files=files)


def stored_files() -> list[Path]:
    storage = get_settings().storage_dir
    return sorted(p for p in storage.rglob("*") if p.is_file()) if storage.exists() else []


def counts(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(Submission)) or 0,
        session.scalar(select(func.count()).select_from(Prediction)) or 0,
    )


def result_file() -> tuple[str, tuple[str, bytes]]:
    return ("predictions", ("UEG_direct.json", json.dumps(result_items()).encode()))


def test_zip_upload_is_accepted(client: TestClient, auth: dict[str, str]) -> None:
    response = post(
        client, auth, [result_file(), ("images", ("images.zip", good_zip(root="out/")))]
    )

    assert response.status_code == 202, response.text
    report = response.json()["report"]
    assert report["missing_images"] == ["ueg_partial_direct/missing_0009.png"]
    assert response.json()["missing_image_count"] == 1


def test_separate_image_files_are_accepted(client: TestClient, auth: dict[str, str]) -> None:
    files = [result_file()]
    for item in result_items():
        path = BASELINES / item["generated_image"]
        if path.is_file():
            files.append(("images", (path.name, path.read_bytes())))

    response = post(client, auth, files, path="/api/v1/submissions/validate")

    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True
    assert len(response.json()["missing_images"]) == 1


def test_result_file_inside_zip(client: TestClient, auth: dict[str, str]) -> None:
    archive = good_zip(extra={"UEG_direct.json": json.dumps(result_items()).encode()})

    response = post(
        client, auth, [("images", ("all.zip", archive))], path="/api/v1/submissions/validate"
    )

    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True


@pytest.mark.parametrize(
    ("extra", "member", "expected"),
    [
        ({"../escape.png": b"x"}, "../escape.png", "leaves the archive"),
        ({"/abs.png": b"x"}, "/abs.png", "absolute"),
        ({"notes.txt": b"hello"}, "notes.txt", "is not a PNG, JPEG or WebP image"),
    ],
    ids=["traversal", "absolute", "not-image"],
)
def test_bad_member_is_named(
    client: TestClient,
    auth: dict[str, str],
    db_session: Session,
    extra: dict[str, bytes],
    member: str,
    expected: str,
) -> None:
    before, files_before = counts(db_session), stored_files()

    response = post(client, auth, [result_file(), ("images", ("images.zip", good_zip(extra)))])

    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["detail"].startswith("images:")
    assert expected in body["detail"]
    assert body["member"] == member
    assert counts(db_session) == before
    assert stored_files() == files_before


def test_too_many_members_names_limit(
    client: TestClient, auth: dict[str, str], db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_archive_members", 5)
    before = counts(db_session)

    response = post(client, auth, [result_file(), ("images", ("images.zip", good_zip()))])

    assert response.status_code == 413
    assert response.json()["limit"] == "REALUNIFY_MAX_ARCHIVE_MEMBERS"
    assert counts(db_session) == before


def test_truncated_zip_is_rejected(
    client: TestClient, auth: dict[str, str], db_session: Session
) -> None:
    data = good_zip()
    before = counts(db_session)

    response = post(
        client, auth, [result_file(), ("images", ("images.zip", data[: len(data) // 2]))]
    )

    assert response.status_code == 422
    assert "truncated" in response.json()["detail"]
    assert counts(db_session) == before


def test_ueg_without_images(client: TestClient, auth: dict[str, str]) -> None:
    response = post(client, auth, [result_file()])

    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        "images: a UEG submission needs its generated images"
    )


def test_geu_with_images_is_rejected(client: TestClient, auth: dict[str, str]) -> None:
    response = post(
        client, auth, [result_file(), ("images", ("images.zip", good_zip()))], axis="GEU"
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith("images:")


def test_oversize_request_gets_413(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/submissions",
        headers={**auth, "Content-Length": str(20 * 1024**4)},
        content=b"",
    )

    assert response.status_code == 413
