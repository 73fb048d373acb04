"""Builders for test data: users with tokens and prediction files made from the demo benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.accounts.service import create_user, issue_token
from app.config import get_settings


def create_user_with_token(session: Session, email: str = "researcher@example.org") -> str:
    user = create_user(session, email, "correct horse battery")
    return issue_token(session, user, "tests").secret


def demo_file(stem: str) -> list[dict[str, Any]]:
    path = Path(get_settings().demo_benchmark_path) / f"{stem}.json"
    items: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return items


def answered(stem: str, letters: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """The demo file with a `response` per item: the true answer, or ``letters[index]``."""
    items = demo_file(stem)
    for item in items:
        item["response"] = (letters or {}).get(item["index"], item["answer"])
        if stem == "GEU_step":
            item["edit_image"] = f"edits/{item['index']}.png"
    return items


def as_json(items: list[dict[str, Any]]) -> bytes:
    return json.dumps(items).encode("utf-8")


def as_jsonl(items: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(item) for item in items).encode("utf-8")
