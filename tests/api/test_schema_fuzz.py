"""Generated requests from the OpenAPI schema never make the API answer with a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from app.main import app
from tests.builders import create_user_with_token

schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)


@pytest.fixture
def fuzz_token(committed: None) -> str:
    """A committed account, so the app's own sessions see it; removed after each test."""
    from app.db import session_scope

    with session_scope() as session:
        return create_user_with_token(session, "fuzz@example.org")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_has_no_server_errors(case: schemathesis.Case, fuzz_token: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_token}"}, checks=[not_a_server_error]
    )
