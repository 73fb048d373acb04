"""User accounts, password checks and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound, Unauthorized
from app.logs import get_logger
from app.models import ApiToken, User, utc_now

log = get_logger(__name__)

TOKEN_PREFIX = "rub_"  # noqa: S105
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is shown to the user once and never stored."""

    token: ApiToken
    secret: str


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise InvalidInput(f"email: {error}", field="email") from None


def create_user(session: Session, email: str, password: str | None = None) -> User:
    address = normalize_email(email)
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password: use at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise Conflict(f"email: an account for {address} already exists; sign in instead")
    user = User(email=address, password_hash=_hasher.hash(password) if password else None)
    session.add(user)
    session.flush()
    log.info("user.created", user_id=user.id)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password: use at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    user.password_hash = _hasher.hash(password)
    log.info("user.password_set", user_id=user.id)


def authenticate(session: Session, email: str, password: str) -> User:
    failure = Unauthorized("email or password is wrong")
    try:
        address = normalize_email(email)
    except InvalidInput:
        raise failure from None
    user = session.scalar(select(User).where(User.email == address))
    if user is None or user.password_hash is None:
        raise failure
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        raise failure from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def get_user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"no account with email {email}")
    return user


def _hash_token(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough to keep a stolen table useless.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, name: str) -> IssuedToken:
    name = name.strip() or "token"
    if len(name) > 100:
        raise InvalidInput("name: use at most 100 characters", field="name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id, name=name, token_hash=_hash_token(secret), token_prefix=secret[:10]
    )
    session.add(token)
    session.flush()
    log.info("token.issued", user_id=user.id, token_id=token.id)
    return IssuedToken(token, secret)


def user_for_token(session: Session, secret: str) -> User:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(secret)))
    if token is None or token.revoked_at is not None:
        raise Unauthorized(
            "the API token is invalid or revoked; create one on the account page or with "
            "`realunify-board users create EMAIL --token`"
        )
    token.last_used_at = utc_now()
    user = session.get(User, token.user_id)
    if user is None:
        raise Unauthorized("the API token's account no longer exists")
    return user


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)
        )
    )


def revoke_token(session: Session, user: User, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = utc_now()
        log.info("token.revoked", user_id=user.id, token_id=token.id)
