from __future__ import annotations

import pytest

from app.db import session_scope
from tests.builders import create_user_with_token


@pytest.fixture
def auth(committed: None) -> dict[str, str]:
    """Headers with the token of a committed account, removed after the test."""
    with session_scope() as session:
        token = create_user_with_token(session, "e2e@example.org")
    return {"Authorization": f"Bearer {token}"}
