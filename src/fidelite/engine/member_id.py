"""Member ids (card numbers, customer ids): the one rule every entrance applies.

A member id is the last step of the API's member URLs (``/v1/members/{id}``,
``/v1/members/{id}/balance``), so an id those URLs cannot carry must never be
enrolled: the till could credit the card and never show its balance. Every way in
refuses the same ids with this module's words: the API's member creation (``id``) and
events (``member``, :class:`fidelite.engine.Event`), both imports (``member`` column),
and the ledger's own enrolment (``member_ref``; ``fidelite member add``).

The rule (:data:`MEMBER_ID_RULE`):

* 1 to :data:`MAX_MEMBER_ID` (128) characters: the ledger's ``members.ref`` column
  holds no more (PostgreSQL refused a longer one with a database error, SQLite kept it);
* no ``/``: a URL path step cannot hold it; ``%2F`` is decoded to ``/`` before routing,
  so ``/v1/members/CARD%2F0002/balance`` is a path no member route matches, and a route
  taking the rest of the path would read ``CARD/balance`` as a member;
* not ``.`` or ``..``: HTTP clients (curl, browsers, httpx) resolve such a step
  before sending (``/v1/members/..`` is ``/v1/``);
* no control character (Unicode Cc: tab, line feed, NUL), invisible format character
  (Cf: zero-width space, byte order mark, direction marks), line or paragraph separator
  (Zl, Zp) or lone surrogate (Cs): two ids a person cannot tell apart, or that break a
  log line or a CSV export, would name two members;
* no white space at either end (Python's ``str.strip``, which strips Unicode spaces):
  ``' padded '`` and ``padded`` would be two members nobody can tell apart. An import
  file's ``member`` cell is read without its surrounding spaces
  (:func:`fidelite.processing.importer.row_to_event`), as the members import always
  did; the API and the command line take the id as sent, and refuse it.

Any other character is allowed (letters of any script, digits, inner spaces,
punctuation: ``CARD-0001``, ``ann@example.com``, ``Müller 12``, ``A:1``). Ids enrolled
before this rule are not changed (no migration): they stay readable where they were.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

MAX_MEMBER_ID = 128
"""Longest member id: the ledger's ``members.ref`` column (``String(128)``)."""

MEMBER_ID_RULE = (
    f"a member id is 1 to {MAX_MEMBER_ID} characters, without '/', control or invisible "
    "characters or spaces at either end, and is not '.' or '..'"
)
"""The rule in the words every refusal ends with (docs/api.md, docs/program.md)."""

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PATH_STEPS = frozenset({".", ".."})


def member_id_problem(ref: str) -> str | None:
    """Why ``ref`` cannot be a member id (ending with :data:`MEMBER_ID_RULE`), or None."""
    why = _first_problem(ref)
    return None if why is None else f"{why} ({MEMBER_ID_RULE})"


def _first_problem(ref: str) -> str | None:
    if not ref:
        return "empty"
    if len(ref) > MAX_MEMBER_ID:
        return f"{len(ref)} characters, more than {MAX_MEMBER_ID}"
    if "/" in ref:
        return f"{ref!r} holds '/', which no member URL (/v1/members/<id>) can carry"
    if ref in _PATH_STEPS:
        return f"{ref!r} is a URL path step, which HTTP clients resolve away"
    for char in ref:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            name = unicodedata.name(char, "a control character")
            return f"{ref!r} holds U+{ord(char):04X} ({name})"
    if ref != ref.strip():
        return f"{ref!r} has spaces at its start or end"
    return None


def check_member_id(ref: str, field: str) -> str:
    """``ref`` if it is a member id, else ``ValueError`` naming ``field``."""
    problem = member_id_problem(ref)
    if problem is not None:
        raise ValueError(f"{field}: {problem}")
    return ref


def _validated(ref: str) -> str:
    """Pydantic's check: the problem as the error's message (no "Value error, ")."""
    problem = member_id_problem(ref)
    if problem is not None:
        raise PydanticCustomError("member_id", "{problem}", {"problem": problem})
    return ref


MemberId = Annotated[str, Field(min_length=1, max_length=MAX_MEMBER_ID), AfterValidator(_validated)]
"""A member id in a request or an event (see the module doc for the rule)."""
