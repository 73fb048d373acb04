from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.main import app
from app.web.deps import get_session
from tests.builders import create_user_with_token


@pytest.fixture
def client(db_session: Session) -> Iterator[TestClient]:
    """A client whose requests share the test's rolled-back transaction."""

    def session_override() -> Iterator[Session]:
        yield db_session
        db_session.flush()

    app.dependency_overrides[get_session] = session_override
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
def token(db_session: Session) -> str:
    return create_user_with_token(db_session)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
