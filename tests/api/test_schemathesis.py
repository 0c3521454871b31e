"""Property-based conformance of the live API to its own OpenAPI document (schemathesis):
generated requests to every operation, with a valid admin key, never get a server error,
a response of an undeclared status or content type, or a body violating its schema.
Bounded examples per operation; slow (CI runs it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fidelite.api.keys import create_key
from fidelite.store import Database
from tests.api.conftest import start_server

pytestmark = pytest.mark.slow
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    path: Path = tmp_path_factory.mktemp("schemathesis") / "api.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    server, url = start_server(db)
    token = create_key(db, "shop", "admin")[1]
    yield url, token
    server.stop()
    db.dispose()


def test_api_conforms_to_its_openapi(api: tuple[str, str]) -> None:
    url, token = api
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # every route is in the document

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)

        conforms()
