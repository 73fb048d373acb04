"""Sign-up and sign-in on the web, tokens shown once and stored hashed, the CLI token."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import session_scope
from app.models import ApiToken, User


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def sign_up(client: TestClient, email: str, password: str = "a long password") -> object:
    csrf = csrf_of(client.get("/signup").text)
    return client.post("/signup", data={"email": email, "password": password, "csrf": csrf})


def test_signup_then_token_shown_once(client: TestClient, db_session: Session) -> None:
    response = sign_up(client, "new@example.org")
    assert response.status_code == 200  # followed the redirect to the account page
    account = client.get("/account").text
    assert "new@example.org" in account

    created = client.post("/account/tokens", data={"name": "laptop", "csrf": csrf_of(account)})
    secret = re.search(r'id="new-token">([^<]+)<', created.text).group(1)  # type: ignore[union-attr]
    again = client.get("/account").text

    assert secret.startswith("rub_")
    assert secret not in again
    stored = db_session.scalar(select(ApiToken).where(ApiToken.name == "laptop"))
    assert stored is not None
    assert secret not in stored.token_hash
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()["email"]
        == "new@example.org"
    )


def test_reload_after_token_creates_no_second(client: TestClient, db_session: Session) -> None:
    sign_up(client, "reload@example.org")
    account = client.get("/account").text

    created = client.post("/account/tokens", data={"name": "once", "csrf": csrf_of(account)})
    reloaded = client.get(str(created.url))

    assert created.history[0].status_code == 303
    assert 'id="new-token"' in created.text
    assert 'id="new-token"' not in reloaded.text
    count = db_session.scalar(
        select(func.count()).select_from(ApiToken).where(ApiToken.name == "once")
    )
    assert count == 1


def test_revoked_token_is_rejected(client: TestClient, db_session: Session) -> None:
    sign_up(client, "revoke@example.org")
    account = client.get("/account").text
    created = client.post("/account/tokens", data={"name": "old", "csrf": csrf_of(account)}).text
    secret = re.search(r'id="new-token">([^<]+)<', created).group(1)  # type: ignore[union-attr]
    token_id = db_session.scalar(select(ApiToken.id).where(ApiToken.name == "old"))

    client.post(f"/account/tokens/{token_id}/revoke", data={"csrf": csrf_of(account)})

    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401


def test_signup_errors_are_shown(client: TestClient, db_session: Session) -> None:
    short = sign_up(client, "short@example.org", password="short")
    bad_email = sign_up(client, "not-an-email")
    sign_up(client, "twice@example.org")
    client.cookies.clear()
    twice = sign_up(client, "twice@example.org")

    assert short.status_code == 422
    assert "at least 10 characters" in short.text
    assert bad_email.status_code == 422
    assert "email:" in bad_email.text
    assert twice.status_code == 409
    assert "already exists" in twice.text
    assert db_session.scalar(select(User).where(User.email == "short@example.org")) is None


def test_signin_with_wrong_password(client: TestClient) -> None:
    sign_up(client, "signin@example.org")
    client.cookies.clear()
    csrf = csrf_of(client.get("/signin").text)

    wrong = client.post(
        "/signin", data={"email": "signin@example.org", "password": "nope nope nope", "csrf": csrf}
    )
    right = client.post(
        "/signin", data={"email": "signin@example.org", "password": "a long password", "csrf": csrf}
    )

    assert wrong.status_code == 401
    assert "email or password is wrong" in wrong.text
    assert right.status_code == 200
    assert "signin@example.org" in right.text


def test_form_without_csrf_is_rejected(client: TestClient) -> None:
    client.get("/signup")

    response = client.post(
        "/signup", data={"email": "x@example.org", "password": "a long password"}
    )

    assert response.status_code == 403
    assert "reload the page" in response.text


def test_cli_creates_user_and_prints_token(committed: None) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "create", "cli@example.org", "--token"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )

    secret = result.stdout.strip()
    assert secret.startswith("rub_")
    with session_scope() as session:
        user = session.scalar(select(User).where(User.email == "cli@example.org"))
        assert user is not None
        tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).all()
        assert len(tokens) == 1
        assert tokens[0].token_hash != secret


def test_cli_sets_password_for_web_sign_in(committed: None) -> None:
    env = os.environ.copy()
    subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "create", "script@example.org", "--token"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "password", "script@example.org"],
        input="a long enough password\na long enough password\n",
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "password set" in result.stdout

    from app.accounts.service import authenticate

    with session_scope() as session:
        user = authenticate(session, "script@example.org", "a long enough password")
        assert user.email == "script@example.org"
