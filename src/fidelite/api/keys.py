"""API keys: created, listed and revoked by an operator; checked on every request.

A key reads ``fid_<key id>_<secret>``. The key id is public (it names the key in logs
and in ``fidelite apikey list``); the secret is 32 random bytes shown once at creation.
Only SHA-256 of the secret is stored, and the check compares in constant time.

Roles (what each may do is declared per route in :mod:`fidelite.api.access`):
``admin`` everything; ``integration`` (a till, a shop) members, events, balances,
rewards and redemptions; ``analyst`` read-only; ``support`` members and adjustments
within a limit.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from fidelite.api.tables import api_keys
from fidelite.program.model import IDENTIFIER
from fidelite.store import Database
from fidelite.store.script import Script, one_of

ROLES = ("admin", "integration", "analyst", "support")
PREFIX = "fid"
MAX_PROGRAM_ID = 64  # a program file's id (fidelite.program.model.Identifier)
MAX_LABEL = 200  # api_keys.label
USE_RECORDED_EVERY = timedelta(minutes=1)
"""How often a key's ``last_used_at`` is written at most: not a write per request."""
_EVERY_SECONDS = USE_RECORDED_EVERY.total_seconds()


class ApiKeyError(ValueError):
    """A key operation refused (unknown role, unknown key)."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    key_id: str
    program_id: str
    role: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None


PROGRAM_ID_RULE = (
    "a program id starts with a lowercase letter, then lowercase letters, digits or '_', "
    "at most 64 characters (e.g. cafe_club)"
)


def is_program_identifier(program_id: str) -> bool:
    """Whether a program file could declare ``program_id`` (``fidelite serve`` serves
    only such a program, so a key for any other id would never be accepted)."""
    return len(program_id) <= MAX_PROGRAM_ID and IDENTIFIER.fullmatch(program_id) is not None


_BIDI_CONTROLS = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")  # fmt: skip
"""Characters that reorder the text shown around them (a label reading one thing and
listing as another)."""


def label_problem(label: str) -> str | None:
    """What is wrong with a key's label (None: nothing): longer than the column holds
    (PostgreSQL refused it with an error, SQLite stored it), or holding a control
    character (an ANSI escape would rewrite the terminal of whoever lists the keys)."""
    if len(label) > MAX_LABEL:
        return f"label: at most {MAX_LABEL} characters, got {len(label)}"
    bad = sorted({c for c in label if unicodedata.category(c) in ("Cc", "Zl", "Zp")
                  or c in _BIDI_CONTROLS})  # fmt: skip
    if bad:
        said = ", ".join(f"U+{ord(c):04X}" for c in bad)
        return f"label: control characters are not allowed ({said}): give plain text"
    return None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(db: Database, program_id: str, role: str, label: str = "") -> tuple[ApiKey, str]:
    """Store a new key; return it and the full token (``fid_<id>_<secret>``), shown once."""
    if role not in ROLES:
        raise ApiKeyError(f"unknown role {role!r} (choose from {', '.join(ROLES)})")
    if (problem := label_problem(label)) is not None:
        raise ApiKeyError(problem)
    if not program_id:
        raise ApiKeyError("a key belongs to a program: give its id")
    if not is_program_identifier(program_id):
        raise ApiKeyError(
            f"{program_id!r} is not a program id, so no server could ever take the key: "
            f"{PROGRAM_ID_RULE}; give the id its program file declares, or the file"
        )
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with db.write() as conn:
        conn.execute(insert(api_keys), {
            "key_id": key_id, "program_id": program_id, "role": role,
            "secret_hash": _hash(secret), "label": label, "created_at": now,
        })  # fmt: skip
    return ApiKey(key_id, program_id, role, label, now, None), f"{PREFIX}_{key_id}_{secret}"


def list_keys(db: Database, program_id: str | None = None) -> list[ApiKey]:
    """Every key (or a program's), oldest first."""
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
    if program_id is not None:
        query = query.where(api_keys.c.program_id == program_id)
    with db.read() as conn:
        return [_key(r) for r in conn.execute(query)]


def revoke_key(db: Database, key_id: str) -> ApiKey:
    """Revoke a key at once (idempotent: revoking twice keeps the first time).

    ``key_id`` is the key's id, or its whole token (``fid_<id>_<secret>``, as pasted
    from a leak, even with spaces around it or after ``Bearer``): then the secret must
    be the key's, and no message repeats it, nor any text after a token's second ``_``
    (a secret pasted in a form this does not read)."""
    key_id = key_id.strip()
    if key_id[:7].lower() == "bearer ":
        key_id = key_id[7:].strip()
    token = credentials(key_id)
    if token is not None:
        key_id = token.key_id
        with db.read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise ApiKeyError(f"no key {key_id!r} (the id in the token given)")
        if not hmac.compare_digest(row.secret_hash, token.secret_hash):
            raise ApiKeyError(f"the token given names key {key_id!r} but its secret is not "
                              "that key's: nothing revoked (give the key id alone to revoke "
                              "it)")  # fmt: skip
    with db.write() as conn:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None:
        raise ApiKeyError(f"no key {_without_secret(key_id)!r}")
    return _key(row)


def _without_secret(given: str) -> str:
    """``given`` as a message may show it: up to a second ``_``, where a token's secret
    would start (``fid_<id>_<secret>``), with ``…`` for what is left out."""
    parts = given.split("_", 2)
    return given if len(parts) < 3 else f"{parts[0]}_{parts[1]}_…"


@dataclass(frozen=True)
class Credentials:
    """A bearer token taken apart: the key id it names and the hash of its secret."""

    key_id: str
    secret_hash: str


def credentials(token: str) -> Credentials | None:
    """The key id and secret hash of ``token``, or None if it is not a key at all."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return Credentials(parts[1], _hash(parts[2]))


def authenticate(db: Database, token: str) -> ApiKey | None:
    """The live key a bearer token names, or None (unknown, malformed, wrong or revoked);
    its use recorded (:func:`record_use`) when due."""
    presented = credentials(token)
    if presented is None:
        return None
    with db.lookup() as conn:  # checked on every request: one round trip
        key = check_keys(conn, [presented]).get(presented)
    if key is not None and _use_due([key]):
        try:
            with db.write() as conn:
                record_use(conn, [key])
        except SQLAlchemyError:  # a record of use never refuses the request
            with _recorded_lock:
                _recorded.pop(key.key_id, None)
    return key


_recorded: dict[str, float] = {}  # key id -> time.monotonic() of this process's last write
_recorded_lock = threading.Lock()


def _use_due(keys: Iterable[ApiKey]) -> list[ApiKey]:
    """The keys whose use is to be recorded now: not recorded in the last minute, by
    this process (its own memory) or another (the row read with the key)."""
    keys = list(keys)
    clock = time.monotonic()
    every = _EVERY_SECONDS
    due: list[ApiKey] = []
    for key in keys:  # the usual request: one look-up, no lock
        last = _recorded.get(key.key_id)
        if last is None or clock - last >= every:
            break
    else:
        return due
    now = datetime.now(UTC)
    with _recorded_lock:
        for key in keys:
            last = _recorded.get(key.key_id)
            if last is not None and clock - last < every:
                continue
            if key.last_used_at is not None and now - key.last_used_at < USE_RECORDED_EVERY:
                _recorded[key.key_id] = clock
                continue
            _recorded[key.key_id] = clock
            due.append(key)
    return due


def record_use(conn: Connection, keys: Iterable[ApiKey]) -> None:
    """Write ``last_used_at`` (now) of each of ``keys`` whose use is due
    (:func:`_use_due`: at most once a minute per key, so not a write per request), in
    the transaction of ``conn``."""
    due = [k.key_id for k in keys]
    if not due:
        return
    now = datetime.now(UTC)
    conn.execute(
        update(api_keys)
        .where(
            api_keys.c.key_id.in_(due),
            (api_keys.c.last_used_at.is_(None))
            | (api_keys.c.last_used_at < now - USE_RECORDED_EVERY),
        )
        .values(last_used_at=now)
    )


def record_uses(conn: Connection, keys: Iterable[ApiKey]) -> None:
    """Record the use of those of ``keys`` due (:func:`_use_due`) in ``conn``'s
    transaction (a group of ``POST /v1/events`` requests: its writing transaction)."""
    due = _use_due(keys)
    if due:
        record_use(conn, due)


def check_keys(conn: Connection, presented: Iterable[Credentials]) -> dict[Credentials, ApiKey]:
    """The live keys among ``presented``, read in one query (unknown, revoked or with
    another secret: absent). The secrets are compared in constant time."""
    script = Script(conn)
    check = KeyCheck(script, presented)
    script.run()
    return check.live()


class KeyCheck:
    """The keys a group of requests presents, read with the group's other reads (a
    :class:`~fidelite.store.script.Script`); :meth:`live` once it has run."""

    def __init__(self, script: Script, presented: Iterable[Credentials]) -> None:
        self.presented = set(presented)
        ids = sorted({c.key_id for c in self.presented})
        query = _keys_query(script.is_postgres)
        self._rows = [script.select(query, {"ids": part}) for part in script.parts(ids)]

    def live(self) -> dict[Credentials, ApiKey]:
        """The live keys among those presented (the secrets compared in constant time)."""
        rows = {row.key_id: row for part in self._rows for row in part}
        live: dict[Credentials, ApiKey] = {}
        for given in self.presented:
            row = rows.get(given.key_id)
            if row is None or row.revoked_at is not None:
                continue
            if hmac.compare_digest(row.secret_hash, given.secret_hash):
                live[given] = _key(row)
        return live


@functools.cache
def _keys_query(postgres: bool) -> Select[*tuple[Any, ...]]:
    return select(api_keys).where(one_of(api_keys.c.key_id, "ids", postgres))


def _key(row: object) -> ApiKey:
    r: Any = row
    return ApiKey(r.key_id, r.program_id, r.role, r.label, r.created_at, r.revoked_at,
                  r.last_used_at)  # fmt: skip
