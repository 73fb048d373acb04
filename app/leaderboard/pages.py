"""Leaderboard, model and about pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import Response

from app.config import get_settings
from app.errors import NotFound
from app.leaderboard.query import BoardQuery, load_board
from app.leaderboard.service import SORT_KEYS
from app.models import MODEL_KINDS, Model, Submission
from app.scoring.categories import CATEGORIES_BY_AXIS
from app.web.deps import SessionDep, WebUser
from app.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def leaderboard_page(
    request: Request,
    session: SessionDep,
    user: WebUser,
    sort: str = "total",
    order: str = "desc",
    protocol: str = "",
    kind: str = "",
    source: str = "all",
) -> Response:
    query = BoardQuery(sort, order, protocol or None, kind or None, source)
    board = load_board(session, get_settings().benchmark_name, query)
    return render(
        request,
        "leaderboard.html",
        {
            "user": user,
            "board": board,
            "categories_by_axis": CATEGORIES_BY_AXIS,
            "model_kinds": MODEL_KINDS,
            "sort_keys": SORT_KEYS,
        },
    )


@router.get("/models/{slug}")
def model_page(request: Request, session: SessionDep, user: WebUser, slug: str) -> Response:
    model = session.scalar(select(Model).where(Model.slug == slug))
    if model is None:
        raise NotFound(f"model {slug!r} not found; pick one from the leaderboard")
    board = load_board(session, get_settings().benchmark_name, BoardQuery(sort="model"))
    rows = [row for row in board.rows if row.model_slug == slug]
    rows.sort(key=lambda row: row.protocol)
    submissions = session.scalars(
        select(Submission)
        .where(Submission.model_id == model.id)
        .order_by(Submission.created_at.desc())
    ).all()
    return render(
        request,
        "model.html",
        {
            "user": user,
            "model": model,
            "rows": rows,
            "submissions": submissions,
            "categories_by_axis": CATEGORIES_BY_AXIS,
        },
    )


@router.get("/about")
def about_page(request: Request, user: WebUser) -> Response:
    return render(request, "about.html", {"user": user, "categories_by_axis": CATEGORIES_BY_AXIS})
