"""The Jinja2 environment shared by all pages."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.responses import Response

from app.config import PROJECT_ROOT
from app.scoring.categories import CATEGORY_LABELS
from app.scoring.ueg import DEMO_JUDGE_MODEL
from app.web.deps import csrf_token

templates = Jinja2Templates(directory=str(PROJECT_ROOT / "templates"))


def _percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _with_code(text: str | None) -> Markup:
    """Escape a message and show its `backticked` names as code."""
    escaped = str(escape(text or ""))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))  # noqa: S704


def _judge_label(model: str | None) -> str:
    if model == DEMO_JUDGE_MODEL:
        return "demo judge"
    return model or "–"


def _p_value(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


templates.env.filters["percent"] = _percent
templates.env.filters["p_value"] = _p_value
templates.env.filters["with_code"] = _with_code
templates.env.filters["judge_label"] = _judge_label
templates.env.filters["signed"] = _signed
templates.env.filters["when"] = _when
templates.env.globals["category_labels"] = CATEGORY_LABELS


class _LazyCsrfToken:
    """The form token, created in the session only when a page prints it.

    Pages without forms then set no cookie, so anonymous pages can be cached.
    """

    def __init__(self, request: Request) -> None:
        self._request = request

    def __str__(self) -> str:
        return csrf_token(self._request)

    def __html__(self) -> str:
        return str(escape(str(self)))


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    context.setdefault("user", None)
    context["csrf_token"] = _LazyCsrfToken(request)
    return templates.TemplateResponse(request, name, context, status_code=status_code)
