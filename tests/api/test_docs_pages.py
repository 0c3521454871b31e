"""/docs (Swagger UI, where an admin pastes a key) and /redoc load an exact version of
their script from jsDelivr with its Subresource Integrity hash, under a
Content-Security-Policy that allows no other script and calls to this server only.

They loaded ``swagger-ui-dist@5`` and ``redoc@2`` (whatever version the CDN served that
day), unchecked, with no policy. Over real HTTP on 127.0.0.1 (a SQLite file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fidelite.store import Database
from tests.api.conftest import start_server

SWAGGER = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.36.0/"
REDOC = "https://cdn.jsdelivr.net/npm/redoc@2.5.4/bundles/redoc.standalone.js"


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    db = Database(f"sqlite:///{tmp_path / 'api.db'}")
    server, url = start_server(db)
    yield url
    server.stop()
    db.dispose()


def test_swagger_ui_loads_pinned_checked_files_under_a_policy(base: str) -> None:
    page = httpx.get(f"{base}/docs", timeout=60)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == (
        f"default-src 'none'; script-src 'self' {SWAGGER}swagger-ui-bundle.js; "
        f"style-src {SWAGGER}swagger-ui.css 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    scripts = re.findall(r"<script ([^>]*)>", page.text)
    assert scripts == [
        f'src="{SWAGGER}swagger-ui-bundle.js" integrity="sha384-fUpRgC19yPykTqzdrUbdAg8NTiu1'
        '6NEKf9U12J+IJWCg8/1mEI8f2+PEIz60Wyd+" crossorigin="anonymous"',
        'src="docs/start.js"',
    ]
    assert re.findall(r"<link ([^>]*)>", page.text) == [
        f'rel="stylesheet" href="{SWAGGER}swagger-ui.css" integrity="sha384-z/AtSaOHGn5MJ5auAH'
        'XUypohywlIWLBZo1jeGmhdpVIbCnFhxAH92cwdV41oyINc" crossorigin="anonymous"'
    ]
    assert "<script>" not in page.text  # no inline script: the policy allows none
    start = httpx.get(f"{base}/docs/start.js", timeout=60)
    assert start.status_code == 200
    assert start.headers["content-type"] == "text/javascript; charset=utf-8"
    assert 'url: "openapi.json"' in start.text
    assert httpx.get(f"{base}/openapi.json", timeout=60).status_code == 200


def test_redoc_loads_a_pinned_checked_file_under_a_policy(base: str) -> None:
    page = httpx.get(f"{base}/redoc", timeout=60)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == (
        f"default-src 'none'; script-src {REDOC} 'unsafe-eval'; style-src 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    assert re.findall(r"<script ([^>]*)>", page.text) == [
        f'src="{REDOC}" integrity="sha384-w447zOpYfw/1Tv/5AK9NfHTlQIqE3RVR6KY62jCyy9zNDgO64cMwG'
        'GP1Fj0zJVf5" crossorigin="anonymous"'
    ]
    assert '<redoc spec-url="openapi.json"></redoc>' in page.text
    assert "<link" not in page.text  # no web fonts from elsewhere


def test_the_pages_are_not_in_the_openapi_document(base: str) -> None:
    paths = httpx.get(f"{base}/openapi.json", timeout=60).json()["paths"]
    assert [p for p in paths if p.startswith(("/docs", "/redoc"))] == []
