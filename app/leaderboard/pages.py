"""Leaderboard, exports, model, compare and about pages."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from sqlalchemy import select
from starlette.responses import Response

from app.config import get_settings
from app.errors import NotFound
from app.leaderboard.compare import compare_models
from app.leaderboard.export import board_csv, board_record
from app.leaderboard.query import BoardParams, BoardQuery, board_fingerprint, load_board
from app.leaderboard.service import SORT_KEYS
from app.models import MODEL_KINDS, Model, Submission
from app.scoring.categories import ALL_CATEGORIES, CATEGORIES_BY_AXIS
from app.scoring.runs import list_runs
from app.web.deps import SessionDep, WebUser
from app.web.templating import render

router = APIRouter(include_in_schema=False)
Params = Annotated[BoardParams, Query()]


_page_cache: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
_page_cache_lock = threading.Lock()
PAGE_CACHE_SIZE = 64


@router.get("/")
def leaderboard_page(
    request: Request, session: SessionDep, user: WebUser, params: Params
) -> Response:
    # Anonymous visitors see the same page for the same scores, so it is rendered once.
    key = (request.url.query, *board_fingerprint(session)) if user is None else None
    if key is not None:
        with _page_cache_lock:
            cached = _page_cache.get(key)
        if cached is not None:
            return HTMLResponse(cached)
    response = _render_board(request, session, user, params)
    if key is not None and response.status_code == 200:
        with _page_cache_lock:
            _page_cache[key] = bytes(response.body)
            while len(_page_cache) > PAGE_CACHE_SIZE:
                _page_cache.popitem(last=False)
    return response


def _render_board(
    request: Request, session: SessionDep, user: WebUser, params: BoardParams
) -> Response:
    board = load_board(session, get_settings().benchmark_name, params.to_query())
    return render(
        request,
        "leaderboard.html",
        {
            "user": user,
            "board": board,
            "params": params,
            "categories_by_axis": CATEGORIES_BY_AXIS,
            "model_kinds": MODEL_KINDS,
            "sort_keys": SORT_KEYS,
            "runs": list_runs(session),
            "query_string": request.url.query,
        },
    )


@router.get("/leaderboard.csv")
def leaderboard_csv(session: SessionDep, params: Params) -> Response:
    board = load_board(session, get_settings().benchmark_name, params.to_query())
    return PlainTextResponse(
        board_csv(board),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="realunify-leaderboard.csv"'},
    )


@router.get("/leaderboard.json")
def leaderboard_json(session: SessionDep, params: Params) -> Response:
    board = load_board(session, get_settings().benchmark_name, params.to_query())
    return JSONResponse(
        board_record(board),
        headers={"Content-Disposition": 'attachment; filename="realunify-leaderboard.json"'},
    )


@router.get("/models/{slug}")
def model_page(request: Request, session: SessionDep, user: WebUser, slug: str) -> Response:
    model = session.scalar(select(Model).where(Model.slug == slug))
    if model is None:
        raise NotFound(f"model {slug!r} not found; pick one from the leaderboard")
    board = load_board(
        session, get_settings().benchmark_name, BoardQuery(sort="model", per_page=1000)
    )
    rows = sorted((row for row in board.rows if row.model_slug == slug), key=lambda r: r.protocol)
    submissions = session.scalars(
        select(Submission)
        .where(Submission.model_id == model.id)
        .order_by(Submission.created_at.desc())
    ).all()
    others = sorted(
        {(row.model_name, row.model_slug) for row in board.rows if row.model_slug != slug}
    )
    return render(
        request,
        "model.html",
        {
            "user": user,
            "model": model,
            "rows": rows,
            "submissions": submissions,
            "categories_by_axis": CATEGORIES_BY_AXIS,
            "all_categories": ALL_CATEGORIES,
            "others": others,
            "is_demo": board.benchmark is not None and board.benchmark.is_demo,
        },
    )


@router.get("/compare")
def compare_page(
    request: Request,
    session: SessionDep,
    user: WebUser,
    a: str = "",
    b: str = "",
    protocol: str = "direct",
) -> Response:
    board = load_board(
        session, get_settings().benchmark_name, BoardQuery(sort="model", per_page=1000)
    )
    models = sorted({(row.model_name, row.model_slug) for row in board.rows})
    comparison = compare_models(session, board, a, b, protocol) if a and b else None
    return render(
        request,
        "compare.html",
        {
            "user": user,
            "models": models,
            "a": a,
            "b": b,
            "protocol": protocol,
            "comparison": comparison,
            "categories_by_axis": CATEGORIES_BY_AXIS,
            "is_demo": board.benchmark is not None and board.benchmark.is_demo,
        },
    )


@router.get("/about")
def about_page(request: Request, user: WebUser) -> Response:
    return render(request, "about.html", {"user": user, "categories_by_axis": CATEGORIES_BY_AXIS})
