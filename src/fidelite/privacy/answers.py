"""Stored answers naming an erased member: anonymised by the erasure.

The API keeps the first answer to each ``Idempotency-Key`` (``api_requests``, defined
in the store: :mod:`fidelite.store.answers`) and replays it to retries. An answer about
a member names them (``"member": "card-1"``, a member's ``"id"``, an event's decision,
a bulk adjustment's results, a refusal's ``detail``) and may carry their profile (the
answer to ``POST`` or ``PATCH /v1/members``), and the request's route may name them
(``POST /v1/members/card-1/adjustments``). Kept as they were, a retry after the erasure
would give the reference back, and with it the redemption id, code or transactions that
link it to the anonymised account.

:func:`anonymise_answers` rewrites them in the erasure's transaction, as every other
table is rewritten: each value equal to the reference, the route's member step (after
``/members/``) equal to it and each quoted mention of it in a text (``no member 'card-1'``) becomes
the tombstone; in an object naming the member, ``attributes``, ``segments`` and
``birth_date`` are emptied as the profile is. A retry then replays the anonymised
answer. The request hash stays: it is a SHA-256 of the route and body (not the body),
kept so that the retry is still recognised, as the erasure record keeps a digest of
the reference.

Finding them: answers are not indexed by member, so the program's answers are filtered
in the database by the text of the reference (``LIKE``, in the route or the JSON text
of the body, as sent or JSON-escaped) and only those rows are read and checked value by
value: one pass over the program's stored answers per erasure.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, cast, or_, select, update

from fidelite.processing.erased import ref_digest
from fidelite.store.answers import api_requests
from fidelite.webhooks.tables import erasures

_PROFILE: dict[str, Any] = {"attributes": {}, "segments": [], "birth_date": None}
MEMBER_FIELDS = frozenset({"member", "member_ref", "id"})
"""The fields of an answer that name a member (``id``: a member's own answer); a value
elsewhere equal to the reference (a reward, a currency) is not the member."""


def anonymise_answers(conn: Connection, program_id: str, ref: str, tombstone: str) -> int:
    """Rewrite every stored answer of ``program_id`` naming ``ref`` (see the module
    docstring), in the caller's transaction; the number of rows rewritten."""
    t = api_requests
    texts = {ref, json.dumps(ref)[1:-1]}  # as sent, as JSON writes it (\u00e9, \")
    like = [column.like(f"%{_escaped(s)}%", escape="\\")
            for s in texts for column in (t.c.route, cast(t.c.body, Text))]  # fmt: skip
    found = conn.execute(
        select(t.c.idem_key, t.c.route, t.c.body).where(t.c.program_id == program_id, or_(*like))
    ).all()
    rewritten = 0
    for key, route, body in found:
        values: dict[str, Any] = {}
        if (new_route := anonymised_route(route, ref, tombstone)) != route:
            values["route"] = new_route
        if (new_body := anonymised(body, ref, tombstone)) != body:
            values["body"] = new_body
        if values:
            conn.execute(
                update(t).where(t.c.program_id == program_id, t.c.idem_key == key).values(**values)
            )
            rewritten += 1
    return rewritten


def answers_naming(conn: Connection, program_id: str, ref: str) -> list[dict[str, Any]]:
    """The stored answers of ``program_id`` that name ``ref`` (the rows
    :func:`anonymise_answers` would rewrite: by the route's member step, a field naming
    the member or a quoted mention in a text), column for column but ``program_id``,
    oldest first: what the member's export lists as held about them."""
    t = api_requests
    texts = {ref, json.dumps(ref)[1:-1]}
    like = [column.like(f"%{_escaped(s)}%", escape="\\")
            for s in texts for column in (t.c.route, cast(t.c.body, Text))]  # fmt: skip
    found = conn.execute(
        select(t).where(t.c.program_id == program_id, or_(*like))
        .order_by(t.c.created_at, t.c.idem_key)
    ).mappings()  # fmt: skip
    other = ref + "\x00"  # anything but the reference: does the row change?
    return [
        {k: v for k, v in row.items() if k != "program_id"}
        for row in found
        if anonymised_route(row["route"], ref, other) != row["route"]
        or anonymised(row["body"], ref, other) != row["body"]
    ]


def own_part(value: Any, ref: str) -> Any:
    """``value`` (a stored answer) without the parts about other members: an item of a
    list that names members (:func:`_about_another`), ``ref`` not among them, is left
    out. A bulk adjustment or an event batch answers for
    several members at once; the export of one of them must not hand out the others'
    references and figures."""
    if isinstance(value, list):
        return [own_part(v, ref) for v in value if not _about_another(v, ref)]
    if isinstance(value, dict):
        return {k: own_part(v, ref) for k, v in value.items()}
    return value


def _about_another(value: Any, ref: str) -> bool:
    """Whether ``value``, an item of a list, is about members other than ``ref`` only:
    it names some (``member``, ``member_ref`` at any depth: an event batch's item names
    its member inside its decision), ``ref`` not among them."""
    if not isinstance(value, dict):
        return False
    named = _members_in(value)
    return bool(named) and ref not in named


def _members_in(value: Any) -> set[str]:
    """The ``member`` and ``member_ref`` values in ``value``, at any depth (not ``id``:
    in a list, an ``id`` is an event's, a reward's..., not a member's)."""
    if isinstance(value, list):
        return {ref for v in value for ref in _members_in(v)}
    if not isinstance(value, dict):
        return set()
    own = {v for k, v in value.items() if k in ("member", "member_ref") and isinstance(v, str)}
    return own.union(*(_members_in(v) for v in value.values()))


def erased_meanwhile(
    conn: Connection, program_id: str, body: Any, since: datetime, *, route: str = ""
) -> Any:
    """``body``, an answer about to be stored, anonymised for each member it or its
    request's ``route`` names who was erased at or after ``since`` (when its request was
    claimed): the erasure ran while the request was answered, after the request's change
    committed and before its answer is stored, so the erasure could not find the answer.

    The route counts because a refusal names the member only in its ``detail`` (``no
    member 'card-1'``, the answer of a request refused because the erasure came first):
    the erasure has already rewritten the route of the claimed row to the tombstone,
    and a body still naming the reference would link the two. One indexed query, and
    only for an answer or a route naming a member."""
    named = _named(body) | route_members(route)
    refs = {ref_digest(program_id, ref): ref for ref in named}
    if not refs:
        return body
    found = conn.execute(
        select(erasures.c.ref_digest, erasures.c.tombstone).where(
            erasures.c.program_id == program_id,
            erasures.c.ref_digest.in_(sorted(refs)),
            erasures.c.erased_at >= since,
        )
    ).all()
    for digest, tombstone in found:
        body = anonymised(body, refs[digest], tombstone)
    return body


def _named(value: Any) -> set[str]:
    """The member references ``value`` (a JSON answer) names, in :data:`MEMBER_FIELDS`."""
    if isinstance(value, list):
        return {ref for v in value for ref in _named(v)}
    if not isinstance(value, dict):
        return set()
    own = {v for k, v in value.items() if k in MEMBER_FIELDS and isinstance(v, str)}
    return own.union(*(_named(v) for v in value.values()))


def route_members(route: str) -> set[str]:
    """The member a route (``METHOD /path``) names: the path step after the first
    ``members`` (``POST /v1/members/card-1/adjustments``; a member id holds no ``/``).
    Only the first: a member may be called ``members``, and the step after their id is
    the route's (``/v1/members/members/tier:assign``)."""
    steps = route.split("/")
    at = _member_step(steps)
    return set() if at is None else {steps[at]}


def _member_step(steps: list[str]) -> int | None:
    """The index of the member's step in a route's ``steps``: the one after the first
    ``members``; None when the route names no member."""
    if "members" not in steps:
        return None
    at = steps.index("members") + 1
    return at if at < len(steps) else None


def anonymised(value: Any, ref: str, tombstone: str) -> Any:
    """``value`` (a JSON answer) with ``ref`` replaced by ``tombstone`` and the profile
    emptied in every object that names the member."""
    if isinstance(value, str):
        return _text(value, ref, tombstone)
    if isinstance(value, list):
        return [anonymised(v, ref, tombstone) for v in value]
    if isinstance(value, dict):
        out = {k: anonymised(v, ref, tombstone) for k, v in value.items()}
        if any(value.get(k) == ref for k in MEMBER_FIELDS):  # about the member:
            out.update({k: tombstone for k in MEMBER_FIELDS if value.get(k) == ref})
            out.update({k: v for k, v in _PROFILE.items() if k in out})  # profile goes
        return out
    return value


def anonymised_route(route: str, ref: str, tombstone: str) -> str:
    """``route`` (``METHOD /path``) with the member's own path step replaced: the step
    after ``members`` when it equals ``ref`` (a member id holds no ``/``, so it is always
    a whole step). Another step that happens to equal the reference (a member ``v1`` or
    ``events``) is the route's, not the member's, and stays."""
    steps = route.split("/")
    at = _member_step(steps)
    if at is not None and steps[at] == ref:
        steps[at] = tombstone
    return "/".join(steps)


def _text(value: str, ref: str, tombstone: str) -> str:
    """A text with the quoted mentions of ``ref`` (``no member 'card-1'``) replaced."""
    for quoted, by in ((f"'{ref}'", f"'{tombstone}'"), (repr(ref), repr(tombstone))):
        value = value.replace(quoted, by)
    return value


def _escaped(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = [
    "anonymise_answers",
    "anonymised",
    "anonymised_route",
    "answers_naming",
    "erased_meanwhile",
    "own_part",
    "route_members",
]
