"""The API application: ``create_app`` wires the database, the program and the routes.

The API validates, authenticates, authorises and orchestrates; every rule lives in the
engine, the ledger and the processing layer (:mod:`fidelite.processing`), the same
code bulk import uses.
"""

from __future__ import annotations

import gc
import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text

from fidelite import __version__
from fidelite.api import openapi, problems
from fidelite.api.access import caller
from fidelite.api.bodies import checked_request
from fidelite.api.intake import EventIntake
from fidelite.api.limits import BodyLimit, RateLimiter
from fidelite.ledger import Ledger
from fidelite.processing import EventProcessor
from fidelite.program import ProgramDefinition, load_program
from fidelite.store import Database
from fidelite.store.migrate import NewerSchema, check_known, current_revision, head_revision


@dataclass
class Settings:
    """Limits an operator may tune (``fidelite serve`` options)."""

    max_body_bytes: int = 1_000_000
    max_page: int = 200
    max_batch: int = 1000
    support_adjustment_limit: int = 5000
    rate_per_second: float = 0.0  # per key, for events and redemptions; 0 = no limit
    rate_burst: float = 100.0
    idempotency_lease_seconds: float = 30.0  # after a crash, a retry may take over then
    event_group: int = 200  # most concurrent single events per transaction (1: no grouping)
    # fidelite serve's server (fidelite.api.server.GuardedHttpProtocol): a request's line
    # and headers, at most this many bytes (431 otherwise), within this many seconds (408)
    max_header_bytes: int = 65_536
    header_timeout: float = 10.0
    max_connections: int = 1000  # per worker: a request beyond that many connections is 503
    upgrade: bool = True


@dataclass
class Services:
    """What the routes use; one per application (shared by its request threads)."""

    db: Database
    program: ProgramDefinition
    processor: EventProcessor
    intake: EventIntake  # POST /v1/events: concurrent requests answered in groups
    ledger: Ledger
    settings: Settings
    limiter: RateLimiter


def create_app(
    db_url: str | None,
    program: ProgramDefinition | Path | str,
    settings: Settings | None = None,
    *,
    events_fast_path: bool = True,
) -> FastAPI:
    """The FastAPI application for one program on one database.

    ``events_fast_path``: ``POST /v1/events`` is answered before FastAPI's routing
    (:mod:`fidelite.api.fastpath`); False leaves it to its FastAPI route (the same
    answers, compared by the tests)."""
    settings = settings or Settings()
    definition = program if isinstance(program, ProgramDefinition) else load_program(Path(program))
    db = Database(db_url, pool_size=20)
    if settings.upgrade:
        db.upgrade()
    processor = EventProcessor(db, definition)
    limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
    intake = EventIntake(processor, limiter, lease_seconds=settings.idempotency_lease_seconds,
                         max_group=settings.event_group)  # fmt: skip
    services = Services(db, definition, processor, intake, processor.ledger, settings, limiter)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What the process has built so far lives as long as it does: kept out of the
        # collector's full passes, which otherwise stopped the writer for ~0.1 s now and
        # then (measured: the p99 group time fell from 110 ms to 18 ms).
        gc.collect()
        gc.freeze()
        yield
        intake.close()  # the server stops: answer what is queued, stop the writer thread,
        db.dispose()  # and close the pooled connections

    app = FastAPI(
        lifespan=lifespan,
        # a body without Content-Type is read as JSON, as POST /v1/events reads it; any
        # other media type is 415 (fidelite.api.problems.unsupported_media)
        strict_content_type=False,
        # /v1/members/ is a path the API does not have: 404 not_found (problem+json), not
        # a redirect (307, before the key is checked, to a URL built from the Host header)
        redirect_slashes=False,
        # /docs and /redoc: our pages, pinned scripts and a policy of their own (_docs_routes)
        docs_url=None,
        redoc_url=None,
        title="fidelite API",
        version=__version__,
        description="Members, events, balances, rewards and redemptions of one loyalty "
        "program. Authenticate with `Authorization: Bearer <API key>`; send "
        "`Idempotency-Key` on every POST, PATCH and DELETE so retries are safe. Errors are "
        "RFC 9457 `application/problem+json`.",
    )
    app.state.services = services
    problems.install(app)
    _health_routes(app, services)
    _docs_routes(app)
    from fidelite.api.routes import ROUTERS, events

    # first: the busiest route is matched first (it checks its callers in its group)
    app.include_router(events.intake_router, responses=problems.RESPONSES)
    # the caller's key first; then what no route takes (fidelite.api.bodies)
    checks = [Depends(caller), Depends(checked_request)]
    for router in ROUTERS:
        app.include_router(router, dependencies=checks, responses=problems.RESPONSES)
    if events_fast_path:
        from fidelite.api.fastpath import EventsFastPath

        app.add_middleware(EventsFastPath, services=services)  # inside the body limit
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    openapi.install(app, max_page=settings.max_page)
    return app


def _health_routes(app: FastAPI, services: Services) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The database answers and is migrated")
    def readyz() -> JSONResponse:
        try:
            with services.db.read() as conn:
                conn.execute(text("SELECT 1"))
            current = current_revision(services.db)
        except Exception as exc:  # the database is down: not ready, say why
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
        head = head_revision(services.db)
        ready = current == head
        status = "ready" if ready else "newer_schema" if _newer(current) else "not_migrated"
        body = {"status": status, "revision": current, "head": head}
        return JSONResponse(body, 200 if ready else 503)


CDN = "https://cdn.jsdelivr.net/npm/"
SWAGGER_JS = f"{CDN}swagger-ui-dist@5.36.0/swagger-ui-bundle.js"
SWAGGER_CSS = f"{CDN}swagger-ui-dist@5.36.0/swagger-ui.css"
REDOC_JS = f"{CDN}redoc@2.5.4/bundles/redoc.standalone.js"
# Subresource Integrity: sha384 of each file as published on npm (npm pack
# swagger-ui-dist@5.36.0 redoc@2.5.4; openssl dgst -sha384 -binary FILE | base64), the
# bytes jsDelivr serves for an exact version: a changed file is not run.
INTEGRITY = {
    SWAGGER_JS: "sha384-fUpRgC19yPykTqzdrUbdAg8NTiu16NEKf9U12J+IJWCg8/1mEI8f2+PEIz60Wyd+",
    SWAGGER_CSS: "sha384-z/AtSaOHGn5MJ5auAHXUypohywlIWLBZo1jeGmhdpVIbCnFhxAH92cwdV41oyINc",
    REDOC_JS: "sha384-w447zOpYfw/1Tv/5AK9NfHTlQIqE3RVR6KY62jCyy9zNDgO64cMwGGP1Fj0zJVf5",
}
_PAGE_POLICY = "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
SWAGGER_POLICY = (
    f"default-src 'none'; script-src 'self' {SWAGGER_JS}; style-src {SWAGGER_CSS} "
    f"'unsafe-inline'; img-src 'self' data:; connect-src 'self'; {_PAGE_POLICY}"
)
"""/docs: no script but the pinned bundle and the page's own start script (no inline
script); calls go to this server only (the key pasted there goes nowhere else)."""
REDOC_POLICY = (
    f"default-src 'none'; script-src {REDOC_JS} 'unsafe-eval'; style-src 'unsafe-inline'; "
    f"img-src 'self' data:; connect-src 'self'; worker-src blob:; {_PAGE_POLICY}"
)
"""/redoc: the pinned bundle only (it compiles schema checks with ``new Function``, runs
its search in a worker made from a blob and styles itself inline); Redoc takes no key."""
SWAGGER_START = """window.ui = SwaggerUIBundle({
  url: "openapi.json", dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
  showExtensions: true, showCommonExtensions: true, validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""


def _tag(url: str) -> str:
    return f'src="{url}" integrity="{INTEGRITY[url]}" crossorigin="anonymous"'


def _docs_routes(app: FastAPI) -> None:
    """Swagger UI (/docs) and Redoc (/redoc): each page loads an exact version of its
    script from jsDelivr, checked against its hash (Subresource Integrity), under a
    Content-Security-Policy allowing nothing else; relative URLs, so that they work
    behind a reverse proxy's path prefix."""
    title = html.escape(app.title)
    swagger = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{SWAGGER_CSS}" integrity="{INTEGRITY[SWAGGER_CSS]}" \
crossorigin="anonymous">
</head><body><div id="swagger-ui"></div>
<script {_tag(SWAGGER_JS)}></script>
<script src="docs/start.js"></script>
</body></html>
"""
    redoc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
</head><body><redoc spec-url="openapi.json"></redoc>
<script {_tag(REDOC_JS)}></script>
</body></html>
"""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(swagger, headers={"Content-Security-Policy": SWAGGER_POLICY})

    @app.get("/docs/start.js", include_in_schema=False)
    def docs_start() -> Response:
        return Response(SWAGGER_START, media_type="text/javascript")

    @app.get("/redoc", include_in_schema=False)
    def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers={"Content-Security-Policy": REDOC_POLICY})


def _newer(revision: str | None) -> bool:
    """Whether a newer fidelite upgraded the database (``db upgrade`` would refuse it)."""
    try:
        check_known(revision)
    except NewerSchema:
        return True
    return False
