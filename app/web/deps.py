"""Request dependencies: the database session, the signed-in user and form protection."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.accounts.service import user_for_token
from app.db import session_scope
from app.errors import Forbidden, Unauthorized
from app.models import User


def get_session() -> Iterator[Session]:
    """Yield a session for one request: committed when the route returns, rolled back on error."""
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
# A row id in a URL path, bounded so no value overflows the database's integer column.
RowId = Annotated[int, Path(ge=1, le=2_147_483_647, description="A positive row id")]
_bearer = HTTPBearer(auto_error=False, description="An API token from the account page or CLI")


def require_token_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        raise Unauthorized(
            "missing API token; send the header `Authorization: Bearer TOKEN` with a token from "
            "the account page or `realunify-board users create EMAIL --token`"
        )
    return user_for_token(session, credentials.credentials)


TokenUser = Annotated[User, Depends(require_token_user)]


def optional_web_user(request: Request, session: SessionDep) -> User | None:
    user_id = request.session.get("user_id")
    if not isinstance(user_id, int):
        return None
    user = session.get(User, user_id)
    if user is None:
        request.session.clear()
    return user


WebUser = Annotated[User | None, Depends(optional_web_user)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if (
        not isinstance(expected, str)
        or not submitted
        or not secrets.compare_digest(expected, submitted)
    ):
        raise Forbidden("the form expired or came from another site; reload the page and retry")
