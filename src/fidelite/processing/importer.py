"""Bulk import of events and members from CSV or Parquet, through the same processor
as the API.

Each row is one event, processed atomically on its own (under a savepoint, many
rows per transaction): a bad row is reported (row number, column, reason) and
skipped, and never stops the import or leaves part of itself written. A chunk that
fails as a whole (a row the database refuses in a way the processor does not expect)
is rolled back and applied again one row per transaction: the failing row is reported
with the exception, its neighbours are imported. Only a database that cannot be written
(a full disk, an I/O error, a lost connection: :mod:`fidelite.processing.failure`) or no
longer answers stops the import (:class:`DatabaseStopped`), no row rejected for it.
Re-running the same file changes nothing: events already recorded are counted as
duplicates (a row whose id is recorded for another event is rejected,
``event_id_conflict``, as the API answers). A refund listed before the row of its
purchase waits for that row and is applied right after it (:class:`_Early`), in every
run of the file, so that the first run, a re-run and a resumed run agree. The
summary reports what refunds could not take back from a member (points written off,
points clawed back into debt, per currency): the refund policy's shortfall is explicit,
never silent.

Erased members (:mod:`fidelite.privacy.erasure`): their reference is a tombstone in the
store, kept nowhere in clear, but the erasure record keeps a digest of it
(:mod:`fidelite.processing.erased`), which the importer compares with the digest of
each chunk's references (one indexed query per chunk). A row of an erased member's
history is never imported again, so re-running a file cannot bring the erased data
back: a row whose event is recorded for the tombstone of its reference is a duplicate
(``duplicates_erased`` in the summary; nothing is written), and a row for an erased
reference dated at or before its (latest) erasure that is not recorded is rejected
with ``member_erased``. A row dated after the erasure is new activity of the reference:
it enrols it as a new member, as the API does (nothing links the two).

Files (:mod:`fidelite.processing.rows`): CSV in UTF-8 (a byte order mark is skipped)
or Parquet; ids may be numbers (Parquet), taken as the decimal text of their whole
value in both imports (``1001`` and ``1001.0`` are ``'1001'``; a fraction such as
``8.5`` is refused, :func:`~fidelite.processing.cells.id_text`); a float32
(float16) column's amounts are read at that precision (12.34, not 12.34000015258789).

Columns: ``event_id``, ``type``, ``member``, ``at`` (ISO 8601 with offset), ``amount``,
and optionally ``channel``, ``store``, ``coupon``, ``refund_of``, ``items`` (JSON list
of ``{sku, category, quantity, price}``) and ``attributes`` (JSON object). Empty cells
are absent values. Row numbers are those a spreadsheet shows (the header is row 1).
The ``member`` cell is read without the spaces around it, in both imports (so a cell
``' padded '`` is the member ``padded``), then checked by the member id rule the API
applies (:mod:`fidelite.engine.member_id`: no ``/``, no control characters, ...). A
member an older version enrolled with the spaces of its cell (``' padded '``) stays the
member of the cells of its trimmed id, padded or not, while no member holds or held
(erased) that id; so does a member an older members import enrolled with the text of a
decimal cell (``'1001.0'``) for the float and decimal cells of ``1001``, never for a text
cell (:func:`_legacy_members`).

Members (:func:`import_members`): ``member`` and optionally ``joined_at`` (ISO 8601 with
offset; for new members, default now), ``birth_date`` (YYYY-MM-DD, from 1900-01-01 to
today), ``segments`` (a JSON list, or names separated by ``;``, at most 50, kept once
each, sorted, as the API keeps them) and ``attributes`` (JSON object, checked as the API
checks it). A new member is enrolled; an existing one gets the given fields (its join
date stays); a row that changes nothing counts as unchanged, so re-running the file
changes nothing. Rows are applied in file order: a member listed twice ends with the
last row's values, and the summary warns of such rows (``listed_again``): a re-run
counts those that differ as updated. A row for an erased reference no member holds now
is rejected (``member_erased``) unless its ``joined_at`` is after the erasure: a file
exported before the erasure does not enrol the erased person again with their profile.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Connection, or_, select, text

from fidelite.engine import Event
from fidelite.engine.calendar import fixed_offset, in_utc
from fidelite.engine.event import ISO_INSTANT_EXAMPLE, REFUND, offset_problem, read_attributes
from fidelite.engine.member import (
    EARLIEST_BIRTH,
    MAX_SEGMENTS,
    profile_problems,
    segment_set,
)
from fidelite.engine.member_id import check_member_id
from fidelite.ledger import Rejected
from fidelite.processing.batch import Answer, process_events, process_one
from fidelite.processing.cells import (
    calendar_problem,
    event_cell,
    id_key,
    id_text,
    json_problem,
)
from fidelite.processing.collector import bulk_collection
from fidelite.processing.erased import (
    ErasedRef,
    any_erased,
    erased_refs,
    of_erased_history,
    tombstones,
)
from fidelite.processing.failure import DatabaseFailure, database_failure
from fidelite.processing.members_import import Current, Save, save_members
from fidelite.processing.processor import (
    EventProcessor,
    MemberChange,
    MemberProfile,
    Outcome,
    ProcessingError,
    Result,
)
from fidelite.processing.recorded import conflict, kept_fields, unerased
from fidelite.processing.rows import (
    Columns,
    ImportFileError,
    Row,
    decimal_column,
    read_cells,
    read_rows,
)
from fidelite.processing.rows import count_rows as _count_rows
from fidelite.processing.statistics import StatisticsRefresh
from fidelite.processing.tables import member_states
from fidelite.program.model import IDENTIFIER
from fidelite.store import Database

__all__ = [
    "EVENT_COLUMNS",
    "MEMBER_COLUMNS",
    "Committed",
    "DatabaseStopped",
    "ImportFileError",
    "ImportReport",
    "MemberImportReport",
    "RejectedRow",
    "check_rejects_path",
    "clear_rejects",
    "count_rows",
    "import_events",
    "import_members",
    "row_to_event",
    "row_to_member",
    "write_rejects",
]

REQUIRED = ("event_id", "type", "member", "at")
OPTIONAL = ("amount", "channel", "store", "coupon", "refund_of", "items", "attributes")
EVENT_COLUMNS: Columns = (REQUIRED, OPTIONAL)
JSON_COLUMNS = ("items", "attributes")
ID_COLUMNS = ("event_id", "member", "refund_of", "coupon", "store", "channel")
MEMBER_REQUIRED = ("member",)
MEMBER_OPTIONAL = ("joined_at", "birth_date", "segments", "attributes")
MEMBER_COLUMNS: Columns = (MEMBER_REQUIRED, MEMBER_OPTIONAL)
_NUMBER = re.compile(r"\s*[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?\s*")
"""A cell that is a number (``20261201``, ``1.7e9``): never a date in an import."""
OUT_OF_ORDER_SHOWN = 10  # rows dated before an earlier row of their member, named in the summary
FAILED = "processing_failed"  # the code of a row that failed with an unexpected exception
ERASED = "member_erased"  # a row of an erased member's history, not recorded: not imported
_I = TypeVar("_I")  # an item of a chunk (an event, a row)
_R = TypeVar("_R")  # what applying it gives
_W = TypeVar("_W")


@dataclass(frozen=True)
class RejectedRow:
    """A row that was not imported, and why; ``key`` is its event id (member reference)."""

    row: int
    key: str
    code: str
    message: str


@dataclass(frozen=True)
class Failed:
    """A row that failed with an exception the processor does not expect (a bug, or a
    database refusal no check foresaw): it changed nothing and is reported."""

    message: str

    @classmethod
    def of(cls, exc: Exception) -> Failed:
        """The exception's type and the first line of its message (a database error's
        next lines repeat the SQL and its parameters)."""
        lines = str(exc).strip().splitlines()
        detail = f": {lines[0][:300]}" if lines else ""
        return cls(f"{type(exc).__name__}{detail}")


@dataclass(frozen=True)
class _Held:
    """A row for an erased reference dated at or before its latest erasure (at
    ``erased_at``): not applied; once the recorded events are read it is a duplicate of
    the erased member's event if its id is recorded, else refused (``member_erased``)."""

    erased_at: datetime


@dataclass(frozen=True)
class _ErasedDuplicate:
    """A row whose event is recorded for the tombstone of the row's (erased) reference."""


_ERASED_DUPLICATE = _ErasedDuplicate()
MemberSaved = MemberChange | RejectedRow | Failed
_Answered = Answer | Failed | _Held | _ErasedDuplicate


@dataclass
class ImportReport:
    """Counts of an import run, the rejected rows, and what refunds could not take back
    (``written_off``/``into_debt``: points per currency, under the program's shortfall
    policy ``within_balance``/``debt``; ``already_expired``: points of the refunded
    purchases that had expired, which no policy applies to). ``erased_duplicates``:
    those of the ``duplicates`` whose event is recorded for a member erased since."""

    rows: int = 0
    processed: int = 0
    duplicates: int = 0
    erased_duplicates: int = 0
    out_of_order: list[int] = field(default_factory=list)
    """Row numbers dated before an earlier row of the same member in the file (rows are
    applied in file order, not re-sorted: such a file gives other joins and bonuses)."""
    rejected: list[RejectedRow] = field(default_factory=list)
    refunds: int = 0
    written_off: dict[str, int] = field(default_factory=dict)
    into_debt: dict[str, int] = field(default_factory=dict)
    already_expired: dict[str, int] = field(default_factory=dict)
    last_row: int = 0
    """The number of the last row done (its chunk committed and counted)."""
    stopped: bool = False
    """The run was asked to stop (``stop``) and did, between two chunks: the rows after
    :attr:`last_row` were not imported; re-running the file imports them (the rows done
    before are duplicates)."""
    refunds_waiting: list[int] = field(default_factory=list)
    """Rows of a stopped run: refunds up to :attr:`last_row` listed before the row of
    their purchase, which comes after it, not applied yet (each is applied right after
    its purchase's row, see :class:`_Early`): the re-run applies them. Empty once the
    file is done."""

    def summary(self) -> dict[str, Any]:
        """Counts, rejections per code, refunds and their shortfall per currency;
        ``duplicates_erased`` (of the duplicates, rows of members erased since) only
        when there are some, so the summary of a run without them is as it always was."""
        erased: dict[str, Any] = {}
        if self.erased_duplicates:
            erased["duplicates_erased"] = self.erased_duplicates
        if self.out_of_order:  # a warning: the rows were imported, in file order
            shown = self.out_of_order[:OUT_OF_ORDER_SHOWN]
            erased["out_of_order"] = {"rows": len(self.out_of_order), "first_rows": shown}
        if self.refunds_waiting:  # (a stopped run only)
            erased["refunds_waiting"] = len(self.refunds_waiting)
        return {
            "rows": self.rows,
            "processed": self.processed,
            "duplicates": self.duplicates,
            **erased,
            "rejected": len(self.rejected),
            "rejected_by_code": _by_code(self.rejected),
            "refunds": self.refunds,
            "points_written_off": dict(sorted(self.written_off.items())),
            "points_into_debt": dict(sorted(self.into_debt.items())),
            "points_already_expired": dict(sorted(self.already_expired.items())),
        }


def count_rows(path: Path, columns: Columns = EVENT_COLUMNS) -> int:
    """Number of data rows, the file checked first (encoding, columns): a caller can
    refuse a bad file before opening the database."""
    return _count_rows(path, columns)


def row_to_event(cells: dict[str, Any]) -> Event:
    """Build an event from a row. A ``ValueError`` names every problem of the row, each
    with its column, joined by ``'; '`` in column order (a row-wide problem last), as
    members are told (:func:`row_to_member`): a row with a bad date and a bad amount is
    fixed in one go. A column tells its first problem only (a bad ``items`` cell holds
    many). A cell the user must rewrite (a type in capitals, an amount with a decimal
    comma, a date that is no day) is echoed with what to write
    (:func:`~fidelite.processing.cells.event_cell`). Only a rejected row pays for this:
    a good row is validated once, as before."""
    data: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for column, value in cells.items():
        if value is None or value == "":
            continue
        if column in ID_COLUMNS:
            try:
                value = id_text(value)
            except ValueError as exc:  # (a number that names no id: 8.5)
                problems[column] = f"{column}: {exc}"
                continue
        if column == "member":
            value = _trimmed(value)
            if value == "":  # a cell of spaces only is an empty cell
                continue
        if column in JSON_COLUMNS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                problems[column] = f"{column}: invalid JSON ({json_problem(exc)})"
                continue
            except RecursionError:
                problems[column] = f"{column}: invalid JSON (nested too deeply)"
                continue
        elif column == "attributes" and isinstance(value, dict):  # a Parquet struct
            value = _struct_fields(value)
        data["id" if column == "event_id" else column] = value
    try:
        event = Event.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(p) for p in error["loc"]]
            top = "event_id" if loc[:1] == ["id"] else loc[0] if loc else "(row)"
            column = "event_id" if top == "event_id" else ".".join(loc) or "(row)"
            told = event_cell(column, error["type"], error.get("input"))
            message = told or str(error["msg"]).removeprefix("Value error, ")
            problems.setdefault(top, f"{column}: {message}")
    else:
        if not problems:
            return event
    order = {column: index for index, column in enumerate(cells)}
    ranked = sorted(problems, key=lambda column: order.get(column, len(order)))
    raise ValueError("; ".join(problems[column] for column in ranked))


def import_events(
    processor: EventProcessor,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    chunk: int = 1000,
    batch: bool = True,
    stop: Callable[[], bool] | None = None,
    committed: Committed | None = None,
) -> ImportReport:
    """Import every row of ``path``; ``progress`` is called with each row number done
    (for display: the row is committed, but the count of committed rows is told by
    ``committed``, see :data:`Committed`).

    ``stop`` is asked before each chunk (after the previous one is committed and
    counted): when it answers true, the import ends there with ``stopped`` set in the
    report (not when the file is done). What is recorded is then exactly the rows the
    report counts, up to ``last_row`` (an interrupt raised inside a chunk could leave it
    committed but not counted): the CLI stops this way on Ctrl-C, so it can say which
    rows are done; the re-run imports the rest.

    Rows are committed ``chunk`` at a time (one transaction per chunk). With ``batch``
    (the default), the earning events of a chunk go through the batch path
    (:mod:`fidelite.processing.batch`: same result, far fewer statements), refunds one
    at a time in their place in the file; without it every event runs on its own
    savepoint. A chunk that raises is rolled back and its events applied again one per
    transaction: an event that raises again is rejected with code ``processing_failed``
    (the exception's type and message) and its neighbours are recorded. If the database
    cannot be written (:func:`~fidelite.processing.failure.database_failure`: a full
    disk, an I/O error, a lost connection...), :class:`DatabaseStopped` is raised at
    once with the report of the chunks committed before (no row rejected for it); if it
    no longer answers, the error is raised. Re-running the file resumes safely
    (recorded events count as duplicates). The run uses
    :func:`~fidelite.processing.collector.bulk_collection` (fewer collector passes; the
    process's settings come back at the end).

    Once the last chunk is committed, the planner's statistics are refreshed
    (:meth:`~fidelite.processing.statistics.StatisticsRefresh.finish`) after the rejected
    rows are sorted: an interrupt then cuts the refresh short only (the rows are all
    committed and told to ``committed``).
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    report = ImportReport()
    rows = read_rows(path, EVENT_COLUMNS)
    statistics = StatisticsRefresh(processor.db)

    def one(conn: Connection, event: Event) -> Answer:
        return process_one(processor, conn, event)

    alone = _alone(processor.db, one)
    latest: dict[str, datetime] = {}
    part = list(islice(rows, chunk))  # (the whole file is checked first)
    early = _refunds_before_purchase(path) if part else _Early({})
    legacy = _legacy_members(processor, path) if part else {}
    with bulk_collection():
        while part:
            if stop is not None and stop():  # (rows are left: the file is not done)
                report.stopped = True
                break
            before, shown, parked = report.rows, len(report.rejected), dict(early.parked)
            try:
                _import_chunk(processor, report, part, early, legacy, latest, batch, alone,
                              committed)  # fmt: skip
            except Exception as exc:
                failure = database_failure(exc)
                if failure is None:
                    raise
                report.rows = before  # the chunk is not counted: its rows are the re-run's
                del report.rejected[shown:]
                report.refunds_waiting = sorted(parked)
                report.rejected.sort(key=lambda rejected: rejected.row)
                raise DatabaseStopped(failure, report) from exc
            if progress:
                for row in part:
                    progress(row.number)
            statistics.count(len(part))  # the tables have doubled: plans must see it
            part = list(islice(rows, chunk))
        if report.stopped:
            report.refunds_waiting = sorted(early.parked)
        elif early.parked:  # (never: every refund waits for a row of the file)
            _stopping(report, lambda: _last_refunds(processor, report, early, batch, alone))
    report.rejected.sort(key=lambda rejected: rejected.row)
    if not report.stopped:  # (the run that completes the file refreshes them)
        statistics.finish()
    return report


class DatabaseStopped(Exception):
    """The database could not be written (``failure``: a full disk, an I/O error, a lost
    connection..., :mod:`~fidelite.processing.failure`): the import stopped at once, with
    no row rejected for it. ``report`` counts the rows done before, up to its
    ``last_row`` (the chunks committed); the chunk in progress was rolled back (rows of
    it applied one per transaction after another failure may be committed: the
    :data:`Committed` callback was told each). Re-running the file imports the rest."""

    def __init__(self, failure: DatabaseFailure, report: ImportReport | MemberImportReport):
        super().__init__(str(failure))
        self.failure = failure
        self.report = report


def _stopping(report: ImportReport | MemberImportReport, work: Callable[[], _W]) -> _W:
    """``work()``; a database failure is raised as :class:`DatabaseStopped` with
    ``report`` (the rows counted so far)."""
    try:
        return work()
    except Exception as exc:
        failure = database_failure(exc)
        if failure is None:
            raise
        report.rejected.sort(key=lambda rejected: rejected.row)
        raise DatabaseStopped(failure, report) from exc


def _import_chunk(
    processor: EventProcessor,
    report: ImportReport,
    part: list[Row],
    early: _Early,
    legacy: dict[str, str],
    latest: dict[str, datetime],
    batch: bool,
    alone: Callable[[Event], Answer | Failed],
    committed: Committed | None,
) -> None:
    """Import a chunk's rows and count them in ``report``."""
    before = report.rows
    numbered = _as_enrolled(legacy, _parse(report, part))
    placed = early.arrange(part, numbered)
    events = [event for _, event, _ in placed]
    erased = _erased(processor, events)
    through = _events_committed(committed, before, part, placed)
    applied = _apply(processor, events, erased, batch, alone, through)
    if committed:  # (rows after the last applied event: rejected, held)
        committed(before + len(part), part[-1].number)
    answers = _settle(processor, events, applied, erased)
    for (number, event, _), answer in zip(placed, answers, strict=True):
        _count(report, number, event, answer)
        if not isinstance(answer, Failed | ProcessingError | Rejected):
            _note_order(report, latest, number, event)
    report.last_row = part[-1].number


Committed = Callable[[int, int], None]
"""Told ``(rows, last_row)`` as soon as rows are committed: the first ``rows`` rows of
the file, up to row ``last_row``, are done (committed, or rejected: a rejected row
changes nothing). Called right after each chunk's transaction commits (each row's, for
a chunk applied again one row per transaction), before anything else runs, so a caller
interrupted afterwards (a second Ctrl-C raising :class:`KeyboardInterrupt`) knows
exactly what is committed. Only the few instructions between the database's commit and
the call remain, where an interrupt finds the rows committed but not yet told. A refund
listed before the row of its purchase is done with that later row (it waits for it,
:class:`_Early`): a run stopped in between leaves it to the re-run."""


def _events_committed(
    committed: Committed | None, before: int, part: list[Row], placed: list[_Placed]
) -> Callable[[int], None]:
    """What :func:`_apply` calls with ``i`` once the chunk's events up to ``events[i]``
    are committed (or changed nothing): ``committed`` told the rows up to the row that
    event is applied at (its own, or for a refund listed before its purchase, the
    purchase's; ``before``: the rows of the chunks before)."""
    if committed is None:
        return lambda _i: None
    position = {row.number: index + 1 for index, row in enumerate(part)}

    def through(i: int) -> None:
        at = placed[i][2]
        committed(before + position[at], at)

    return through


_Placed = tuple[int, Event, int]
"""An event of a chunk: its row's number, the event, and the number of the row it is
applied at (its own, or the later row of the purchase a refund waited for)."""


@dataclass
class _Early:
    """The refunds a file lists before the row of their purchase, and where they go.

    A refund is applied in its place in the file, unless the file lists its purchase
    only later: it would then find no purchase (``unknown_purchase``), while a re-run,
    or the run that resumes an interrupted import, finds the purchase recorded and
    applies it, and the books would differ between a clean import and a re-run. So such
    a refund waits (``parked``) for the row of its purchase and is applied right after
    it, in the same transaction: every run of the file (clean, re-run, resumed after an
    interrupt or a crash at any point) applies the same events in the same order, as if
    the file listed the refund after its purchase. Which refunds wait is decided from
    the file alone (:func:`_refunds_before_purchase`), never from what is recorded."""

    after: dict[int, list[int]]
    """The row of a purchase: the rows of the refunds listed before it that name it."""
    waiting: set[int] = field(default_factory=set)
    parked: dict[int, Event] = field(default_factory=dict)
    """The waiting refunds read so far whose purchase's row is not reached yet."""

    def __post_init__(self) -> None:
        self.waiting = {row for rows in self.after.values() for row in rows}

    def arrange(self, part: list[Row], numbered: list[tuple[int, Event]]) -> list[_Placed]:
        """The chunk's events in the order they are applied: a waiting refund is taken
        out of its place and put right after the row of its purchase (whether that row
        is a good event or refused: the refund is then refused in its turn)."""
        events = dict(numbered)
        placed: list[_Placed] = []
        for row in part:
            event = events.get(row.number)
            if event is not None:
                if row.number in self.waiting and event.type == REFUND:
                    self.parked[row.number] = event
                else:
                    placed.append((row.number, event, row.number))
            for waited in self.after.get(row.number, ()):
                refund = self.parked.pop(waited, None)
                if refund is not None:  # (None: the refund's row was refused)
                    placed.append((waited, refund, row.number))
        return placed


def _refunds_before_purchase(path: Path) -> _Early:
    """Which refunds of ``path`` the file lists before a row of their purchase's id, and
    the last such row of the file, after them, that each waits for: whatever that row's
    fate (a purchase refused for its amount and listed again, a duplicate), the refund is
    applied once every row of its purchase's id is done, in every run of the file. A
    light reading of the event id, type and ``refund_of`` columns only
    (:func:`~fidelite.processing.rows.read_cells`), matched as written (the importer
    reads ids as they are, a number as the text of its whole value)."""
    waiting: dict[str, list[int]] = {}  # refund_of: the refunds naming it, no row of it since
    last: dict[str, tuple[int, list[int]]] = {}  # an id: its last row, the refunds before
    for number, cells in read_cells(path, ("event_id", "type", "refund_of")):
        own = cells.get("event_id")
        key = id_key(own) if _given(own) else None
        if key is not None and (key in waiting or key in last):
            before = last[key][1] if key in last else []
            before.extend(waiting.pop(key, ()))
            last[key] = (number, before)
        named = cells.get("refund_of")
        if cells.get("type") == REFUND and _given(named):
            waiting.setdefault(id_key(named), []).append(number)
    return _Early({row: refunds for row, refunds in last.values()})


def _last_refunds(
    processor: EventProcessor,
    report: ImportReport,
    early: _Early,
    batch: bool,
    alone: Callable[[Event], Answer | Failed],
) -> None:
    """Apply the waiting refunds left once every row is read, in file order. None is
    left, every one waiting for a row of the file; this is only so that no row of the
    file could ever go uncounted."""
    numbered = sorted(early.parked.items())
    early.parked.clear()
    events = [event for _, event in numbered]
    erased = _erased(processor, events)
    applied = _apply(processor, events, erased, batch, alone, lambda _i: None)
    for (number, event), answer in zip(numbered, _settle(processor, events, applied, erased),
                                       strict=True):  # fmt: skip
        _count(report, number, event, answer)


_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
"""What :meth:`str.strip` takes off either end of a ``member`` cell."""


_AS_DECIMAL = re.compile(r"(-?(?:0|[1-9][0-9]*))\.0+")
"""A member id an older members import wrote from a whole number of a decimal column
(``'1001.0'``, ``'1001.00'``): group 1 is the id such a cell is read as now."""


def _legacy_members(processor: EventProcessor, path: Path) -> dict[str, str]:
    """The members an older version enrolled under an id no cell is read as now, by the
    id their cells are read as: when no member holds or held that id (an erased one
    counts: its rows are refused as erased, never booked on another member) and no other
    such member has it, every such cell of that id is that member's (its events and its
    profile), so that the id never becomes a second member with its own first-purchase
    bonus, nor does a re-run of the file conflict with the events recorded for it. Such
    members are

    * those a version before member cells were trimmed enrolled with the spaces of their
      cell (``' padded '``), by the trimmed id (``padded``), padded or not;
    * only when ``path``'s ``member`` column is a Parquet float or decimal column
      (:func:`~fidelite.processing.rows.decimal_column`): those a members import before
      numbers were read by their whole value enrolled from such a cell (pandas' float64
      ``1001.0``) as ``'1001.0'``, by ``'1001'``. A text cell (CSV, or a text column)
      ``1001`` never names ``'1001.0'``: the older version read it as ``'1001'`` too.

    Read once, when the import starts (the candidates in one query, the ids they are
    read as in chunks of :data:`_LOOKUP` and by erasure digest): what a cell names does
    not depend on the chunk it is read in, nor on what the file has enrolled so far."""
    program = processor.program.id
    refs = member_states.c.member_ref
    shapes = [ref for c in _SPACES for ref in (refs.startswith(c), refs.endswith(c))]
    decimal = decimal_column(path, "member")
    if decimal:
        shapes.append(refs.like("%.%0"))
    with processor.db.read() as conn:
        found = conn.execute(select(refs).where(member_states.c.program_id == program,
                                                or_(*shapes)))  # fmt: skip
        by_read: dict[str, list[str]] = {}
        for ref in found.scalars():
            read = _read_now(ref, decimal)
            if read != ref:
                by_read.setdefault(read, []).append(ref)
        if not by_read:
            return {}
        taken = _held(conn, program, sorted(by_read))
    return {read: legacy[0] for read, legacy in by_read.items()
            if len(legacy) == 1 and read not in taken}  # fmt: skip


_LOOKUP = 5_000
"""Ids per query of :func:`_held` (below every database's limit of parameters)."""


def _held(conn: Connection, program: str, ids: Sequence[str]) -> set[str]:
    """The ``ids`` a member holds now or held before its erasure."""
    refs = member_states.c.member_ref
    held: set[str] = set()
    for start in range(0, len(ids), _LOOKUP):
        held.update(conn.execute(select(refs).where(
            member_states.c.program_id == program, refs.in_(ids[start : start + _LOOKUP])
        )).scalars())  # fmt: skip
    rest = [read for read in ids if read not in held]
    if rest and any_erased(conn, program):
        held.update(erased_refs(conn, program, rest))
    return held


def _read_now(ref: str, decimal: bool) -> str:
    """The id the cells that enrolled the member ``ref`` are read as now: trimmed
    (``' padded '``), or, for a ``decimal`` column's cells, a decimal's whole value
    (``'1001.0'``); else ``ref`` itself."""
    if ref != ref.strip():
        return ref.strip()
    whole = _AS_DECIMAL.fullmatch(ref) if decimal else None
    return whole.group(1) if whole else ref


def _as_enrolled(
    legacy: dict[str, str], numbered: list[tuple[int, Event]]
) -> list[tuple[int, Event]]:
    """The chunk's events, each for the member an older version enrolled from its cell
    (with its spaces, or from a decimal cell) when its member is such a member's id
    (:func:`_legacy_members`)."""
    if not legacy:
        return numbered
    return [(number, event.model_copy(update={"member": legacy[event.member]})
             if event.member in legacy else event) for number, event in numbered]  # fmt: skip


def _erased(processor: EventProcessor, events: Sequence[Event]) -> dict[str, ErasedRef]:
    """The erased references among the chunk's members (one indexed query by digest per
    chunk; none for an empty chunk)."""
    if not events:
        return {}
    with processor.db.read() as conn:
        return erased_refs(conn, processor.program.id, {event.member for event in events})


def _apply(
    processor: EventProcessor,
    events: Sequence[Event],
    erased: dict[str, ErasedRef],
    batch: bool,
    alone: Callable[[Event], Answer | Failed],
    through: Callable[[int], None],
) -> list[_Answered]:
    """Apply the chunk's events, except those of an erased member's history (held back,
    :class:`_Held`: applying them would enrol the erased reference again, with the
    erased member's past); answers in the chunk's order. ``through(i)`` is called as
    soon as the events up to ``events[i]`` are committed."""
    held: dict[int, _Held] = {}
    for i, event in enumerate(events):
        found = of_erased_history(erased, event.member, event.at)
        if found is not None:
            held[i] = _Held(found.last_erased_at)
    applied = [event for i, event in enumerate(events) if i not in held]
    answers: list[Answer | Failed] = []
    if applied:  # (a chunk all held opens no transaction)
        applier = _events_applier(processor, applied, batch)
        kept = [i for i in range(len(events)) if i not in held]
        answers = _chunk_or_alone(
            processor.db, applied, applier, alone, lambda n: through(kept[n - 1])
        )
    done = iter(answers)
    return [held[i] if i in held else next(done) for i in range(len(events))]


def _settle(
    processor: EventProcessor,
    events: Sequence[Event],
    answers: list[_Answered],
    erased: dict[str, ErasedRef],
) -> list[_Answered]:
    """Each duplicate compared with the event recorded under its id, as the API does: a
    row whose id is recorded for another event (other member, type, time, amount, ...) is
    rejected with ``event_id_conflict`` naming the differences, not counted a duplicate.
    A recorded member that is the tombstone of the row's erased reference is the same
    member (:func:`~fidelite.processing.recorded.unerased`): the row is a duplicate of
    the erased member's event. A held row (:class:`_Held`) is settled the same way if
    its id is recorded, and refused with ``member_erased`` if it is not.

    Read after the chunk committed, so a row repeating an id of an earlier row of the
    same file, in this chunk or an earlier one, is compared with that row's event. Only
    the compared fields are read (:func:`kept_fields`): a re-run of a whole file is all
    duplicates. A conflict with an event recorded for an erased member names no
    tombstone (:func:`~fidelite.processing.erased.tombstones`)."""
    compared = [i for i, a in enumerate(answers) if isinstance(a, _Held)
                or (isinstance(a, Result) and a.outcome is Outcome.duplicate)]  # fmt: skip
    if not compared:
        return answers
    with processor.db.read() as conn:
        stored = kept_fields(conn, processor.program.id, {events[i].id for i in compared})
        hidden = tombstones(conn, processor.program.id,
                            {first["member"] for first in stored.values()})  # fmt: skip
    out = list(answers)
    for i in compared:
        event, answer = events[i], answers[i]
        first = stored.get(event.id)
        if first is None:
            if isinstance(answer, _Held):
                out[i] = _erased_history(event, answer)
            continue  # (a duplicate not found: recorded events are never deleted)
        plain = unerased(event, first, erased)
        refused = conflict(event, plain or first, hidden)
        if refused is not None:
            out[i] = refused
        elif plain is not None:
            out[i] = _ERASED_DUPLICATE
        elif isinstance(answer, _Held):  # recorded for the reference as it is now
            out[i] = Result(event.id, Outcome.duplicate)
    return out


def _erased_history(event: Event, held: _Held) -> ProcessingError:
    """``member_erased``: a row of an erased member's history that is not recorded. The
    message names no tombstone (that would link the erased member to its reference)."""
    return ProcessingError(ERASED, _erased_message(event.member, held.erased_at,
        "an event dated at or before the erasure belongs to the erased history and is not "
        "imported (an event after it enrols the reference as a new member)"))  # fmt: skip


def _erased_message(ref: str, erased_at: datetime, why: str) -> str:
    """Why a row of an erased reference was not imported, naming the reference as the
    file gave it and the day of the erasure, never the tombstone."""
    return f"the member {ref!r} was erased on {erased_at.astimezone(UTC).date()}: {why}"


def _events_applier(
    processor: EventProcessor, events: Sequence[Event], batch: bool
) -> Callable[[Connection], list[Answer]]:
    """What applies a chunk's events in one transaction (the batch path, or one by one)."""

    def apply(conn: Connection) -> list[Answer]:
        if batch:
            return process_events(processor, conn, events)
        return [process_one(processor, conn, event) for event in events]

    return apply


def _chunk_or_alone(
    db: Database,
    items: Sequence[_I],
    apply: Callable[[Connection], list[_R]],
    alone: Callable[[_I], _R | Failed],
    committed: Callable[[int], None],
) -> list[_R | Failed]:
    """``apply`` the chunk in one transaction; if it fails, the chunk is rolled back and
    each item applied ``alone`` (its own transaction), so a failing item fails alone.
    ``committed(n)`` is called right after the first ``n`` items are committed: once
    with them all after the chunk's transaction, or after each item's. A failure of the
    database itself (:func:`~fidelite.processing.failure.database_failure`: a full disk,
    a lost connection...) is no item's: it is raised, the chunk rolled back."""
    try:
        with db.write() as conn:
            applied: list[_R | Failed] = list(apply(conn))
    except Exception as exc:
        if database_failure(exc) is not None:
            raise
        return _one_by_one(items, alone, committed)
    committed(len(items))
    return applied


def _one_by_one(
    items: Sequence[_I], alone: Callable[[_I], _R | Failed], committed: Callable[[int], None]
) -> list[_R | Failed]:
    """Each item ``alone``, ``committed`` told after each (a failed item changed nothing)."""
    answers: list[_R | Failed] = []
    for item in items:
        answers.append(alone(item))
        committed(len(answers))
    return answers


def _alone(db: Database, apply: Callable[[Connection, _I], _R]) -> Callable[[_I], _R | Failed]:
    """``apply`` for one item in a transaction of its own; an exception becomes the
    item's :class:`Failed` answer, unless it is the database's failure, not the item's
    (:func:`~fidelite.processing.failure.database_failure`: a full disk, a read-only
    database, a lost connection...) or the database no longer answers: then it is
    raised, the import stops, and a re-run resumes where it stopped."""

    def run(item: _I) -> _R | Failed:
        for attempt in range(1, ALONE_ATTEMPTS + 1):
            try:
                with db.write() as conn:
                    return apply(conn, item)
            except Exception as exc:
                if database_failure(exc) is not None or not _answers(db):
                    raise
                if attempt == ALONE_ATTEMPTS or not _transient(exc):
                    return Failed.of(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    return run


ALONE_ATTEMPTS = 5
"""Times an item is applied when the database aborts its transaction because of another
writer (see :func:`_transient`) before it is reported failed."""
_TRANSIENT = frozenset({"40P01", "40001", "23505"})


def _transient(exc: Exception) -> bool:
    """Whether PostgreSQL aborted the transaction because of another writer: a deadlock
    (40P01), a serialization failure (40001) or a row another writer inserted first
    (23505, e.g. a member it enrolled meanwhile). Nothing was written: the item is not at
    fault and is applied again from the start, as the API does with a batch."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) in _TRANSIENT


def _answers(db: Database) -> bool:
    """Whether the database still answers (a failure was the row's, not the server's)."""
    try:
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def _parse(report: ImportReport, part: list[Row]) -> list[tuple[int, Event]]:
    """The chunk's rows as events, numbered; bad rows are reported and left out."""
    numbered: list[tuple[int, Event]] = []
    for row in part:
        report.rows += 1
        try:
            if row.problem:
                raise ValueError(row.problem)
            event = row_to_event(row.cells)
            numbered.append((row.number, event))
        except Exception as exc:
            key = _key(row.cells, "event_id")
            message = str(exc) if isinstance(exc, ValueError) else Failed.of(exc).message
            report.rejected.append(RejectedRow(row.number, key, "invalid_row", message))
    return numbered


def _note_order(
    report: ImportReport, latest: dict[str, datetime], number: int, event: Event
) -> None:
    """Note row ``number`` in ``report.out_of_order`` if it is dated before an earlier
    row of its member (``latest``: each member's latest time so far in the file); it is
    applied as it comes. Only rows the import took (applied, or recorded before) are
    called here: a refused row, e.g. a mistyped date years ahead, is no member's latest
    time, or the correctly sorted rows after it would all be reported."""
    before = latest.get(event.member)
    if before is not None and event.at < before:
        report.out_of_order.append(number)
    else:
        latest[event.member] = event.at


def _count(report: ImportReport, number: int, event: Event, answer: _Answered) -> None:
    assert not isinstance(answer, _Held), "a held row is settled before it is counted"
    if isinstance(answer, _ErasedDuplicate):
        report.duplicates += 1
        report.erased_duplicates += 1
    elif isinstance(answer, Failed):
        report.rejected.append(RejectedRow(number, event.id, FAILED, answer.message))
    elif isinstance(answer, ProcessingError):
        report.rejected.append(RejectedRow(number, event.id, answer.code, answer.message))
    elif isinstance(answer, Rejected):
        report.rejected.append(RejectedRow(number, event.id, answer.code.value, answer.message))
    elif answer.outcome is Outcome.duplicate:
        report.duplicates += 1
    else:
        report.processed += 1
        if event.type == REFUND:
            _count_refund(report, answer)


def _count_refund(report: ImportReport, result: Result) -> None:
    """A refund applied: what its reversals could not take back from the member."""
    report.refunds += 1
    for receipt in result.receipts:
        if receipt.written_off:
            _add(report.written_off, receipt.currency, receipt.written_off)
        if receipt.debt_added:
            _add(report.into_debt, receipt.currency, receipt.debt_added)
        if receipt.already_expired:
            _add(report.already_expired, receipt.currency, receipt.already_expired)


def _add(totals: dict[str, int], currency: str, points: int) -> None:
    totals[currency] = totals.get(currency, 0) + points


def _by_code(rejected: Iterable[RejectedRow]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for row in rejected:
        reasons[row.code] = reasons.get(row.code, 0) + 1
    return dict(sorted(reasons.items()))


def check_rejects_path(path: Path) -> None:
    """Raise :class:`ImportFileError` if the rejects file cannot be written at ``path``
    (checked before importing: afterwards, the rows would be imported and their
    rejects lost). Creates nothing: a file made for the check is removed.

    What is at ``path`` must be a regular file, or nothing: the import removes the file
    an earlier run left there and writes a new one, so a directory, a device
    (``/dev/null``: removing it would break the machine), a named pipe or a socket is
    refused, and so is a symbolic link (the import would replace the link by a plain
    file, and the file it points to would be left with an earlier run's rejects)."""
    kind = _not_regular(path)
    if kind is not None:
        raise ImportFileError(f"{path}: cannot write the rejects file: it is {kind}"
                              + _GIVE_A_FILE * (kind != "a directory"))  # fmt: skip
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot write the rejects file: {exc.strerror}") from None
    if not existed:
        path.unlink(missing_ok=True)


_GIVE_A_FILE = ", not a regular file: give the path of a file, or of none yet"


def _not_regular(path: Path) -> str | None:
    """What is at ``path`` (not following a symbolic link) if it is there and not a
    regular file (``a directory``, ``a symbolic link``, ...); None for a regular file
    or nothing."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot write the rejects file: {exc.strerror}") from None
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "no regular file")


def clear_rejects(path: Path) -> None:
    """Remove the rejects file an earlier run left at ``path``; what is there must
    still be a regular file (or nothing), as :func:`check_rejects_path` checked:
    ``ImportFileError`` otherwise, and nothing is removed."""
    check_rejects_path(path)
    path.unlink(missing_ok=True)


_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)


def write_rejects(path: Path, rejected: list[RejectedRow], key: str = "event_id") -> None:
    """Write the rejected rows as CSV (row, ``key``, code, message), in a regular file
    only: ``OSError`` if something else came at ``path`` since it was checked (a
    symbolic link is not followed)."""
    kind = _not_regular(path)
    if kind is not None:
        raise OSError(errno.EINVAL, f"it is {kind}{_GIVE_A_FILE}")
    handle = open(os.open(path, _WRITE, 0o666), "w", encoding="utf-8", newline="")  # noqa: SIM115
    with handle:
        writer = csv.writer(handle)
        writer.writerow(["row", key, "code", "message"])
        for row in rejected:
            writer.writerow([row.row, row.key, row.code, row.message])


@dataclass
class MemberImportReport:
    """Counts of a members import and the rejected rows; ``last_row`` and ``stopped``
    as in :class:`ImportReport`."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    listed_again: list[int] = field(default_factory=list)
    """Row numbers of rows applied for a member an earlier applied row of the file named:
    rows are applied in file order, so the last row's values win (a field it leaves
    empty keeps the earlier row's), and a re-run applies them again (rows that differ
    count as updated each time)."""
    rejected: list[RejectedRow] = field(default_factory=list)
    last_row: int = 0
    stopped: bool = False

    def summary(self) -> dict[str, Any]:
        """Counts, a ``listed_again`` warning when some member has several rows (absent
        otherwise, as ``out_of_order`` for events), and rejections per code."""
        warning: dict[str, Any] = {}
        if self.listed_again:
            shown = self.listed_again[:OUT_OF_ORDER_SHOWN]
            warning["listed_again"] = {"rows": len(self.listed_again), "first_rows": shown}
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            **warning,
            "rejected": len(self.rejected),
            "rejected_by_code": _by_code(self.rejected),
        }


def row_to_member(cells: dict[str, Any], now: datetime) -> tuple[str, MemberProfile, datetime]:
    """``(reference, profile, joined at)`` from a row; a ``ValueError`` names every
    problem of the row, each with its column, joined by ``'; '`` in column order (a row
    with a bad date and a bad segment is fixed in one go, not one problem per run)."""
    problems: list[str] = []

    def read(column: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        value = cells.get(column)
        if not _given(value):
            return default
        try:
            return parse(value)
        except ValueError as exc:
            problems.append(str(exc))
            return default

    ref = _member_ref(cells)
    wrong = _ref_problem(cells.get("member"), ref)
    if wrong:
        problems.append(wrong)
    joined = read("joined_at", lambda v: _datetime(v, "joined_at"), now)
    birth = read("birth_date", _date)
    segments = read("segments", _segments)
    attributes = read("attributes", _attributes)
    if problems:
        raise ValueError("; ".join(problems))
    return ref, MemberProfile(segments, attributes, birth), joined


def _ref_problem(cell: Any, ref: str) -> str | None:
    """Why the ``member`` cell ``cell``, read as ``ref``, names no member, with its column:
    empty, a number that names no id (``8.5``), or an id the member id rule refuses."""
    try:
        id_text(cell)
    except ValueError as exc:
        return f"member: {exc}"
    if not ref:
        return "member: missing member reference"
    try:
        check_member_id(ref, "member")
    except ValueError as exc:
        return str(exc)
    return None


def import_members(
    processor: EventProcessor,
    path: Path,
    *,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    chunk: int = 500,
    stop: Callable[[], bool] | None = None,
    committed: Committed | None = None,
    batch: bool = True,
) -> MemberImportReport:
    """Enrol or update every member of ``path``; ``now`` is the join time of new members
    whose row has no ``joined_at``. Chunks, ``stop`` (asked before each chunk),
    ``progress`` and ``committed`` as in :func:`import_events`.

    With ``batch`` (the default), a chunk's members are read, decided and written at
    once (:mod:`fidelite.processing.members_import`: same result, a few statements per
    chunk); without it every row is saved on its own savepoint. A bad row is answered
    alone either way and changes nothing.

    Rows are applied in file order: a member listed twice gets the first row, then the
    second (the last row's values win; a cell it leaves empty keeps the earlier row's;
    its ``joined_at`` is ignored, the member exists by then). Such rows are reported in
    ``listed_again`` (a warning), since a re-run applies them all again: rows that
    differ count as updated each time instead of unchanged."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    report = MemberImportReport()
    rows = read_rows(path, MEMBER_COLUMNS)
    seen: set[str] = set()  # the members applied so far in this file

    erased: dict[str, ErasedRef] = {}  # the current chunk's erased references
    legacy: dict[str, str] = {}  # members an older version enrolled, by the id read now

    def one(conn: Connection, row: Row) -> MemberChange | RejectedRow:
        return _save_member(processor, conn, row, now, erased, legacy)

    save = _alone(processor.db, one)
    part = list(islice(rows, chunk))  # (the whole file is checked first)
    legacy = _legacy_members(processor, path) if part else {}
    while part:
        if stop is not None and stop():  # (rows are left: the file is not done)
            report.stopped = True
            break
        refs = {_as_legacy(legacy, _member_ref(row.cells)) for row in part}

        def saved(part: list[Row] = part, refs: set[str] = refs) -> list[MemberSaved]:
            nonlocal erased
            with processor.db.read() as conn:
                erased = erased_refs(conn, processor.program.id, refs)
            applier = _members_applier(processor, part, now, erased, legacy, refs, batch)
            told = _members_committed(committed, report.rows, part)
            return _chunk_or_alone(processor.db, part, applier, save, told)

        outcomes = _stopping(report, saved)
        for row, outcome in zip(part, outcomes, strict=True):
            _count_member(report, seen, row, outcome)
        report.last_row = part[-1].number
        if progress:
            for row in part:
                progress(row.number)
        part = list(islice(rows, chunk))
    return report


def _members_committed(
    committed: Committed | None, before: int, part: list[Row]
) -> Callable[[int], None]:
    """What :func:`_chunk_or_alone` calls once the chunk's first ``n`` rows are committed:
    ``committed`` told the rows up to the ``n``-th (``before``: the chunks before)."""
    if committed is None:
        return lambda _n: None
    return lambda n: committed(before + n, part[n - 1].number)


def _count_member(
    report: MemberImportReport,
    seen: set[str],
    row: Row,
    outcome: MemberChange | RejectedRow | Failed,
) -> None:
    """Count the row's outcome; a row applied for a member an earlier applied row named
    (``seen``) is noted in ``listed_again``. A rejected row changed nothing: it is no
    earlier row, and is not noted."""
    report.rows += 1
    ref = _member_ref(row.cells)
    if isinstance(outcome, Failed):
        outcome = RejectedRow(row.number, ref, FAILED, outcome.message)
    if isinstance(outcome, RejectedRow):
        report.rejected.append(outcome)
        return
    setattr(report, outcome.value, getattr(report, outcome.value) + 1)
    if ref in seen:
        report.listed_again.append(row.number)
    seen.add(ref)


def _members_applier(
    processor: EventProcessor,
    part: list[Row],
    now: datetime,
    erased: dict[str, ErasedRef],
    legacy: dict[str, str],
    refs: set[str],
    batch: bool,
) -> Callable[[Connection], list[MemberChange | RejectedRow]]:
    """What saves a chunk's members in one transaction: at once (``batch``,
    :func:`~fidelite.processing.members_import.save_members`: ``refs``, every member
    the rows name), or each under its savepoint."""

    def apply(conn: Connection) -> list[MemberChange | RejectedRow]:
        if batch:

            def plan(row: Row, current: Current) -> Save | RejectedRow:
                return _member_plan(processor, row, now, erased, legacy, current)

            def alone(row: Row) -> MemberChange | RejectedRow:
                return _save_member(processor, conn, row, now, erased, legacy)

            return save_members(processor, conn, part, refs, plan, alone)
        return [_save_member(processor, conn, row, now, erased, legacy) for row in part]

    return apply


def _save_member(
    processor: EventProcessor,
    conn: Connection,
    row: Row,
    now: datetime,
    erased: dict[str, ErasedRef],
    legacy: dict[str, str] | None = None,
) -> MemberChange | RejectedRow:
    """Enrol or update the row's member under a savepoint (:func:`_member_plan`, the
    member read from the database); a bad row is returned."""

    def current(ref: str) -> dict[str, Any] | None:
        return processor.member_profile(ref, conn=conn)

    wanted = _member_plan(processor, row, now, erased, legacy, current)
    if isinstance(wanted, RejectedRow):
        return wanted
    try:
        return processor.save_member(wanted.ref, wanted.profile, at=wanted.joined, conn=conn)
    except ValueError as exc:
        return RejectedRow(row.number, wanted.ref, "invalid_row", str(exc))
    except Rejected as exc:
        return RejectedRow(row.number, wanted.ref, exc.code.value, exc.message)


def _member_plan(
    processor: EventProcessor,
    row: Row,
    now: datetime,
    erased: dict[str, ErasedRef],
    legacy: dict[str, str] | None,
    current: Current,
) -> Save | RejectedRow:
    """What the row asks (its member, profile and join time), or why it is refused.
    ``legacy``: the members an older version enrolled with the spaces of their cell or
    from a decimal cell, by the id that names them now (:func:`_legacy_members`);
    ``current``: a member's profile as the file's earlier rows left it (None: no member
    holds the reference).

    A row for an erased reference that no member holds now is refused (``member_erased``)
    unless it says the person joined after the (latest) erasure: a members file
    exported before the erasure must not enrol the erased person again with their
    profile. A member enrolled anew under the reference since is updated as any other.
    """
    ref = _member_ref(row.cells)
    try:
        if row.problem:
            raise ValueError(row.problem)
        ref, profile, joined = row_to_member(row.cells, now)
        ref = _as_legacy(legacy, ref)
        given, found = _given(row.cells.get("joined_at")), erased.get(ref)
        # only then does it matter whether the member exists (a joined_at counts for a new one)
        known = bool(given or found) and current(ref) is not None
        stored = _stored_birth(current, ref, profile.birth_date)
        _check_profile(processor, row.cells, profile, joined, joins=not known, stored=stored)
        joined_anew = given and not (found and found.before(joined))
        if found and not joined_anew and not known:
            return RejectedRow(row.number, ref, ERASED, _erased_message(ref, found.last_erased_at,
                "a member row without a joined_at after the erasure does not enrol the "
                "reference again"))  # fmt: skip
        return Save(ref, profile, joined)
    except ValueError as exc:
        return RejectedRow(row.number, ref, "invalid_row", str(exc))
    except Rejected as exc:
        return RejectedRow(row.number, ref, exc.code.value, exc.message)


def _check_profile(
    processor: EventProcessor,
    cells: dict[str, Any],
    profile: MemberProfile,
    joined: datetime,
    *,
    joins: bool,
    stored: date | None = None,
) -> None:
    """``ValueError`` naming each field, as the API refuses them
    (:func:`~fidelite.engine.member.profile_problems`): a ``joined_at`` before 1970, or
    in the future (the time of processing plus the program's tolerance) for a member the
    row enrols (``joins``; an existing member keeps its join date, the cell is ignored),
    a ``birth_date`` before 1900-01-01 other than the member's ``stored`` one, or after
    today in the program's zone."""
    program = processor.program
    problems = profile_problems(
        joined_at=joined if _given(cells.get("joined_at")) else None,
        birth_date=profile.birth_date, now=processor.clock(),
        zone=program.zone, tolerance=program.future_tolerance, joins=joins,
        stored_birth=stored,
    )  # fmt: skip
    if problems:
        raise ValueError("; ".join(f"{'.'.join(where)}: {message}" for where, message in problems))


def _stored_birth(current: Current, ref: str, birth: date | None) -> date | None:
    """The birth date stored for ``ref`` when the row gives one before 1900-01-01 (a
    value stored before that limit, repeated, is no change); else ``None``, unread."""
    if birth is None or birth >= EARLIEST_BIRTH:
        return None
    stored = current(ref)
    return stored["birth_date"] if stored else None


def _member_ref(cells: dict[str, Any]) -> str:
    """A row's ``member`` cell as the member id it names (see :func:`_trimmed`)."""
    return _key(cells, "member").strip()  # as _trimmed does


def _as_legacy(legacy: dict[str, str] | None, ref: str) -> str:
    """The member ``ref`` names: the one an older version enrolled, if ``legacy`` has it."""
    return legacy.get(ref, ref) if legacy else ref


def _trimmed(value: Any) -> Any:
    """A ``member`` cell without the spaces around it, in both imports: a spreadsheet
    shows none, and a fixed-width export pads its ids (``'CARD-0001   '``); read as
    written, ``' padded '`` and ``padded`` would be two members, each with their own
    first-purchase bonus. The API takes the id as sent and refuses one with spaces at
    either end (:mod:`fidelite.engine.member_id`), so the trimmed id is the member the
    API knows."""
    return value.strip() if isinstance(value, str) else value


def _key(cells: dict[str, Any], column: str) -> str:
    """A row's id cell as text, for its reject line ("" if empty): a number as the text
    of its whole value, one that names no id (``8.5``) as written."""
    value = cells.get(column)
    return id_key(value) if _given(value) else ""


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _datetime(value: Any, column: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        if _NUMBER.fullmatch(str(value)):  # 20261201 is no time, nor seconds since 1970
            raise ValueError(f"{column}: must be an ISO 8601 date and time with a UTC offset, "
                             f"e.g. {ISO_INSTANT_EXAMPLE}, got {value!r}")  # fmt: skip
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            told = calendar_problem(str(value)) or f"not an ISO 8601 date-time: {value!r}"
            raise ValueError(f"{column}: {told}") from None
    if moment.tzinfo is None:  # the cell as written ('2026-01-01', not its midnight)
        written = moment.isoformat() if isinstance(value, datetime) else str(value)
        raise ValueError(f"{column}: needs a UTC offset (e.g. +00:00): {written!r}")
    wrong_offset = offset_problem(moment)  # (-23:59: PostgreSQL refused it, a failed row)
    if wrong_offset is not None:
        raise ValueError(f"{column}: {wrong_offset}")
    try:
        in_utc(moment)
    except ValueError as exc:
        raise ValueError(f"{column}: {exc}") from None
    return fixed_offset(moment)  # a named zone (Parquet): compared and added to in elapsed time


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if _NUMBER.fullmatch(str(value)):  # 19900517: write it 1990-05-17
        raise ValueError(f"birth_date: must be an ISO 8601 date YYYY-MM-DD, e.g. 1990-05-17, "
                         f"got {value!r}")  # fmt: skip
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        told = calendar_problem(str(value)) or f"not a date YYYY-MM-DD: {value!r}"
        raise ValueError(f"birth_date: {told}") from None


def _segments(value: Any) -> list[str]:
    if isinstance(value, list):
        items = value
    elif str(value).lstrip().startswith("["):
        items = _json(value, "segments", list, "a JSON list")
    else:
        items = str(value).split(";")
    names = [str(item).strip() for item in items]
    if len(names) > MAX_SEGMENTS:
        raise ValueError(f"segments: at most {MAX_SEGMENTS} segment names, got {len(names)}")
    if any(not name for name in names):
        raise ValueError(f"segments: empty segment name in {value!r}")
    for name in names:
        # Rules name segments as identifiers: a name they cannot write is refused here
        # rather than lower-cased, which could merge two distinct segments.
        if len(name) > 64 or not IDENTIFIER.match(name):
            raise ValueError(
                f"segments: {name!r} is not a segment name (lower-case letters, digits and "
                "_, starting with a letter, at most 64 characters, as rules write them)"
            )
    return segment_set(names)


def _attributes(value: Any) -> dict[str, Any]:
    """An ``attributes`` cell (a JSON object, or a Parquet map) as the API takes a
    member's attributes (:func:`~fidelite.engine.event.read_attributes`: one value
    each, text, a whole or finite number or true/false, no lone surrogate)."""
    if isinstance(value, dict):
        value = _struct_fields(value)
    return read_attributes(_json(value, "attributes", dict, "a JSON object"))


def _struct_fields(value: dict[str, Any]) -> dict[str, Any]:
    """A Parquet ``attributes`` struct's fields that the row has: a struct column holds
    every key of every row, null where a row has none (``{"optin": false}`` beside
    ``{"optin": true, "score": 2}`` is read back with ``"score": None``), so a null
    field is an attribute the row does not have, not a value refused."""
    return {key: field for key, field in value.items() if field is not None}


def _json(value: Any, column: str, kind: type, described: str) -> Any:
    if isinstance(value, kind):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{column}: invalid JSON ({json_problem(exc)})") from None
    except TypeError as exc:
        raise ValueError(f"{column}: invalid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{column}: invalid JSON (nested too deeply)") from None
    if not isinstance(parsed, kind):
        raise ValueError(f"{column}: must be {described}")
    return parsed
