"""The Jinja2 environment shared by all pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from app.config import PROJECT_ROOT
from app.scoring.categories import CATEGORY_LABELS
from app.web.deps import csrf_token

templates = Jinja2Templates(directory=str(PROJECT_ROOT / "templates"))


def _percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["percent"] = _percent
templates.env.filters["signed"] = _signed
templates.env.filters["when"] = _when
templates.env.globals["category_labels"] = CATEGORY_LABELS


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    context.setdefault("user", None)
    context["csrf_token"] = csrf_token(request)
    return templates.TemplateResponse(request, name, context, status_code=status_code)
