"""Sign-up, sign-in and API token pages, and the account API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from app.accounts.service import (
    authenticate,
    create_user,
    issue_token,
    list_tokens,
    revoke_token,
)
from app.errors import DomainError
from app.models import Model, Submission
from app.web.deps import RowId, SessionDep, TokenUser, WebUser, check_csrf
from app.web.templating import render

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["account"])

TextField = Annotated[str, Form()]
CsrfField = Annotated[str | None, Form()]


@api_router.get("/me", summary="The account the token belongs to")
def me(user: TokenUser) -> dict[str, Any]:
    return {"id": user.id, "email": user.email}


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/signup")
def signup_page(request: Request, user: WebUser) -> Response:
    return render(request, "signup.html", {"user": user, "email": ""})


@router.post("/signup")
def signup(
    request: Request,
    session: SessionDep,
    email: TextField = "",
    password: TextField = "",
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, csrf)
    try:
        user = create_user(session, email, password)
    except DomainError as error:
        context = {"error": error.message, "email": email}
        return render(request, "signup.html", context, status_code=error.status_code)
    request.session["user_id"] = user.id
    return _redirect("/account")


@router.get("/signin")
def signin_page(request: Request, user: WebUser, next: str = "/account") -> Response:
    return render(request, "signin.html", {"user": user, "email": "", "next": _safe_next(next)})


@router.post("/signin")
def signin(
    request: Request,
    session: SessionDep,
    email: TextField = "",
    password: TextField = "",
    next: TextField = "/account",
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, csrf)
    try:
        user = authenticate(session, email, password)
    except DomainError as error:
        context = {"error": error.message, "email": email, "next": _safe_next(next)}
        return render(request, "signin.html", context, status_code=error.status_code)
    request.session.clear()
    request.session["user_id"] = user.id
    return _redirect(_safe_next(next))


@router.post("/signout")
def signout(request: Request, csrf: CsrfField = None) -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return _redirect("/")


@router.get("/account")
def account(request: Request, session: SessionDep, user: WebUser) -> Response:
    if user is None:
        return _redirect("/signin?next=/account")
    # A token just created is shown on this one page view, then dropped from the session.
    new_token = request.session.pop("new_token", None)
    return _account_page(request, session, user, new_token=new_token)


@router.post("/account/tokens")
def create_token(
    request: Request,
    session: SessionDep,
    user: WebUser,
    name: TextField = "",
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return _redirect("/signin?next=/account")
    try:
        issued = issue_token(session, user, name)
    except DomainError as error:
        return _account_page(request, session, user, None, error.message, error.status_code)
    # Redirect after the POST, so reloading the page does not create a second token.
    request.session["new_token"] = issued.secret
    return _redirect("/account")


@router.post("/account/tokens/{token_id}/revoke")
def revoke(
    request: Request, session: SessionDep, user: WebUser, token_id: RowId, csrf: CsrfField = None
) -> Response:
    check_csrf(request, csrf)
    if user is None:
        return _redirect("/signin?next=/account")
    revoke_token(session, user, token_id)
    return _redirect("/account")


def _account_page(
    request: Request,
    session: SessionDep,
    user: Any,
    new_token: str | None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    submissions = session.execute(
        select(Submission, Model)
        .join(Model, Model.id == Submission.model_id)
        .where(Submission.user_id == user.id)
        .order_by(Submission.created_at.desc())
    ).all()
    context = {
        "user": user,
        "tokens": list_tokens(session, user),
        "new_token": new_token,
        "submissions": submissions,
        "error": error,
    }
    return render(request, "account.html", context, status_code=status_code)


def _safe_next(target: str) -> str:
    # Only same-site paths, so a crafted link cannot send a user elsewhere after signing in.
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/account"
