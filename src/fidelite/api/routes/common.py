"""Helpers shared by the routers: the services, the caller, the idempotent runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.access import Caller, caller
from fidelite.api.app import Services
from fidelite.api.idempotency import Outcome, run_once
from fidelite.api.problems import Problem, from_exception
from fidelite.ledger import unknown_member as ledger_unknown_member

IdemKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Makes the call safe to retry (1-200 chars)."),
]
CallerDep = Annotated[Caller, Depends(caller)]
MAX_ID = 2**63 - 1  # database ids are 64-bit: larger numbers can name no row
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="Numeric id.")]
OptionalRowId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


def once(
    svc: Services,
    key: str | None,
    route: str,
    body: Any,
    run: Callable[[], Outcome],
    *,
    replayed: Callable[[Any], Any] | None = None,
    shown: Callable[[Any], Any] | None = None,
) -> JSONResponse:
    """Run a mutating call at most once per Idempotency-Key (see fidelite.api.idempotency).

    ``replayed``: for an answer with a ``replayed`` field, what its stored body becomes
    when sent again (e.g. :func:`~fidelite.api.idempotency.said_again`), so that the body
    says what the ``Idempotent-Replayed`` header says; ``shown``: what a success body
    becomes each time it is sent (:func:`~fidelite.api.idempotency.run_once`)."""
    lease = svc.settings.idempotency_lease_seconds
    return run_once(svc.db, svc.program.id, key, route, body, run, lease_seconds=lease,
                    replayed=replayed, shown=shown)  # fmt: skip


def require_member(svc: Services, member_id: str) -> dict[str, Any]:
    """The member's profile, or 404 ``unknown_member`` (:func:`unknown_member`)."""
    profile = svc.processor.member_profile(member_id)
    if profile is None:
        raise unknown_member(svc, member_id)
    return profile


def unknown_member(svc: Services, member_id: str) -> Problem:
    """The API's one ``unknown_member`` problem (404), worded as the ledger, the event
    processor and the privacy requests word theirs (:func:`fidelite.ledger.unknown_member`),
    whichever route or layer finds the member missing: the reference, the program, and
    ``field`` ``member_ref``."""
    problem = from_exception(ledger_unknown_member(svc.program.id, member_id))
    assert problem is not None
    return problem


class ProblemDetails(BaseModel):
    """Why one item of a bulk call was refused (RFC 9457 problem details, as the API
    answers its errors; may carry ``field`` and the rejection's own details)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(examples=["https://fidelite.dev/problems/unknown_member"])
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable code", examples=["unknown_member"])
