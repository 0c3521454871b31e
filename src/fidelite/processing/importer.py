"""Bulk import of events and members from CSV or Parquet, through the same processor
as the API.

Each row is one event, processed atomically on its own (under a savepoint, many
rows per transaction): a bad row is reported (row number, column, reason) and
skipped, and never stops the import or leaves part of itself written. Re-running
the same file changes nothing: events already recorded are counted as duplicates.

Columns: ``event_id``, ``type``, ``member``, ``at`` (ISO 8601 with offset), ``amount``,
and optionally ``channel``, ``store``, ``coupon``, ``refund_of``, ``items`` (JSON list
of ``{sku, category, quantity, price}``) and ``attributes`` (JSON object). Empty cells
are absent values. Row numbers are those a spreadsheet shows (the header is row 1).

Members (:func:`import_members`): ``member`` and optionally ``joined_at`` (ISO 8601 with
offset; for new members, default now), ``birth_date`` (YYYY-MM-DD), ``segments`` (a
JSON list, or names separated by ``;``) and ``attributes`` (JSON object). A new member
is enrolled; an existing one gets the given fields (its join date stays); a row that
changes nothing counts as unchanged, so re-running the file changes nothing.
"""

from __future__ import annotations

import csv
import importlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from fidelite.engine import Event
from fidelite.ledger import Rejected
from fidelite.processing.batch import Answer, process_events, process_one
from fidelite.processing.collector import bulk_collection
from fidelite.processing.processor import (
    EventProcessor,
    MemberProfile,
    Outcome,
    ProcessingError,
)
from fidelite.processing.statistics import StatisticsRefresh

REQUIRED = ("event_id", "type", "member", "at")
OPTIONAL = ("amount", "channel", "store", "coupon", "refund_of", "items", "attributes")
JSON_COLUMNS = ("items", "attributes")
MEMBER_REQUIRED = ("member",)
MEMBER_OPTIONAL = ("joined_at", "birth_date", "segments", "attributes")


class ImportFileError(ValueError):
    """The file itself cannot be imported (unreadable, wrong format, missing columns)."""


@dataclass(frozen=True)
class RejectedRow:
    """A row that was not imported, and why; ``key`` is its event id (member reference)."""

    row: int
    key: str
    code: str
    message: str


@dataclass
class ImportReport:
    """Counts of an import run and the rejected rows."""

    rows: int = 0
    processed: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts, and rejections per code."""
        reasons: dict[str, int] = {}
        for row in self.rejected:
            reasons[row.code] = reasons.get(row.code, 0) + 1
        return {
            "rows": self.rows,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "rejected_by_code": dict(sorted(reasons.items())),
        }


def count_rows(path: Path) -> int:
    """Number of data rows (for progress bars)."""
    if path.suffix.lower() == ".parquet":
        return int(_parquet(path).metadata.num_rows)
    with path.open(encoding="utf-8", newline="") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def read_rows(
    path: Path, columns: tuple[Sequence[str], Sequence[str]] = (REQUIRED, OPTIONAL)
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, cells)`` of a CSV or Parquet file; checks the columns first.

    ``columns`` = (required, optional) column names; any other column is an error.
    """
    if path.suffix.lower() == ".parquet":
        yield from _parquet_rows(path, columns)
        return
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        _check_columns(path, reader.fieldnames or [], columns)
        for index, row in enumerate(reader, start=2):
            yield index, {k: v for k, v in row.items() if k is not None}


def _parquet(path: Path) -> Any:
    pq = importlib.import_module("pyarrow.parquet")
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ImportFileError(f"{path}: not a readable Parquet file: {exc}") from None


def _parquet_rows(
    path: Path, columns: tuple[Sequence[str], Sequence[str]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    table = _parquet(path)
    _check_columns(path, list(table.schema_arrow.names), columns)
    number = 2
    for batch in table.iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            yield number, row
            number += 1


def _check_columns(
    path: Path, columns: Sequence[str], allowed: tuple[Sequence[str], Sequence[str]]
) -> None:
    required, optional = allowed
    missing = [c for c in required if c not in columns]
    if missing:
        raise ImportFileError(f"{path}: missing column(s): {', '.join(missing)}")
    unknown = [c for c in columns if c not in (*required, *optional)]
    if unknown:
        raise ImportFileError(f"{path}: unknown column(s): {', '.join(unknown)}")


def row_to_event(cells: dict[str, Any]) -> Event:
    """Build an event from a row (raises ``ValueError`` naming the column)."""
    data: dict[str, Any] = {}
    for column, value in cells.items():
        if value is None or value == "":
            continue
        if column in JSON_COLUMNS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{column}: invalid JSON ({exc.msg})") from None
        data["id" if column == "event_id" else column] = value
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        column = "event_id" if loc[:1] == ["id"] else ".".join(loc) or "(row)"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{column}: {message}") from None


def import_events(
    processor: EventProcessor,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    chunk: int = 1000,
    batch: bool = True,
) -> ImportReport:
    """Import every row of ``path``; ``progress`` is called with each row number done.

    Rows are committed ``chunk`` at a time (one transaction per chunk). With ``batch``
    (the default), the earning events of a chunk go through the batch path
    (:mod:`fidelite.processing.batch`: same result, far fewer statements), refunds one
    at a time in their place in the file; without it every event runs on its own
    savepoint. If the database itself fails, the current chunk is rolled back and the
    error raised; re-running the file resumes safely (recorded events count as
    duplicates). The run uses :func:`~fidelite.processing.collector.bulk_collection`
    (fewer collector passes; the process's settings come back at the end).
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    report = ImportReport()
    rows = read_rows(path)
    statistics = StatisticsRefresh(processor.db)
    with bulk_collection():
        while part := list(islice(rows, chunk)):
            numbered = _parse(report, part)
            with processor.db.write() as conn:
                answers = (
                    process_events(processor, conn, [e for _, e in numbered])
                    if batch
                    else [process_one(processor, conn, e) for _, e in numbered]
                )
            for (number, event), answer in zip(numbered, answers, strict=True):
                _count(report, number, event.id, answer)
            if progress:
                for number, _ in part:
                    progress(number)
            statistics.count(len(part))  # the tables have doubled: plans must see it
    statistics.finish()
    report.rejected.sort(key=lambda rejected: rejected.row)
    return report


def _parse(report: ImportReport, part: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, Event]]:
    """The chunk's rows as events, numbered; bad rows are reported and left out."""
    numbered: list[tuple[int, Event]] = []
    for number, cells in part:
        report.rows += 1
        try:
            numbered.append((number, row_to_event(cells)))
        except ValueError as exc:
            event_id = str(cells.get("event_id") or "")
            report.rejected.append(RejectedRow(number, event_id, "invalid_row", str(exc)))
    return numbered


def _count(report: ImportReport, number: int, event_id: str, answer: Answer) -> None:
    if isinstance(answer, ProcessingError):
        report.rejected.append(RejectedRow(number, event_id, answer.code, answer.message))
    elif isinstance(answer, Rejected):
        report.rejected.append(RejectedRow(number, event_id, answer.code.value, answer.message))
    elif answer.outcome is Outcome.duplicate:
        report.duplicates += 1
    else:
        report.processed += 1


def write_rejects(path: Path, rejected: list[RejectedRow], key: str = "event_id") -> None:
    """Write the rejected rows as CSV (row, ``key``, code, message)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", key, "code", "message"])
        for row in rejected:
            writer.writerow([row.row, row.key, row.code, row.message])


@dataclass
class MemberImportReport:
    """Counts of a members import and the rejected rows."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts, and rejections per code."""
        reasons: dict[str, int] = {}
        for row in self.rejected:
            reasons[row.code] = reasons.get(row.code, 0) + 1
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "rejected_by_code": dict(sorted(reasons.items())),
        }


def row_to_member(cells: dict[str, Any], now: datetime) -> tuple[str, MemberProfile, datetime]:
    """``(reference, profile, joined at)`` from a row (``ValueError`` naming the column)."""
    ref = str(cells.get("member") or "").strip()
    if not ref:
        raise ValueError("member: missing member reference")
    joined = now
    if _given(cells.get("joined_at")):
        joined = _datetime(cells["joined_at"], "joined_at")
    birth = None
    if _given(cells.get("birth_date")):
        birth = _date(cells["birth_date"])
    segments = _segments(cells["segments"]) if _given(cells.get("segments")) else None
    attributes = None
    if _given(cells.get("attributes")):
        attributes = _json(cells["attributes"], "attributes", dict, "a JSON object")
    return ref, MemberProfile(segments, attributes, birth), joined


def import_members(
    processor: EventProcessor,
    path: Path,
    *,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    chunk: int = 500,
) -> MemberImportReport:
    """Enrol or update every member of ``path``; ``now`` is the join time of new members
    whose row has no ``joined_at``. Chunks and savepoints as in :func:`import_events`."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    report = MemberImportReport()
    rows = read_rows(path, (MEMBER_REQUIRED, MEMBER_OPTIONAL))
    while batch := list(islice(rows, chunk)):
        with processor.db.write() as conn:
            for number, cells in batch:
                _import_member(processor, conn, report, number, cells, now)
                if progress:
                    progress(number)
    return report


def _import_member(
    processor: EventProcessor,
    conn: Connection,
    report: MemberImportReport,
    number: int,
    cells: dict[str, Any],
    now: datetime,
) -> None:
    report.rows += 1
    ref = str(cells.get("member") or "")
    try:
        ref, profile, joined = row_to_member(cells, now)
        change = processor.save_member(ref, profile, at=joined, conn=conn)
    except ValueError as exc:
        report.rejected.append(RejectedRow(number, ref, "invalid_row", str(exc)))
    except Rejected as exc:
        report.rejected.append(RejectedRow(number, ref, exc.code.value, exc.message))
    else:
        setattr(report, change.value, getattr(report, change.value) + 1)


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _datetime(value: Any, column: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{column}: not an ISO 8601 date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{column}: needs a UTC offset (e.g. +00:00): {moment.isoformat()!r}")
    return moment


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"birth_date: not a date YYYY-MM-DD: {value!r}") from None


def _segments(value: Any) -> list[str]:
    if isinstance(value, list):
        items = value
    elif str(value).lstrip().startswith("["):
        items = _json(value, "segments", list, "a JSON list")
    else:
        items = str(value).split(";")
    names = [str(item).strip() for item in items]
    if any(not name for name in names):
        raise ValueError(f"segments: empty segment name in {value!r}")
    return sorted(set(names))


def _json(value: Any, column: str, kind: type, described: str) -> Any:
    if isinstance(value, kind):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{column}: invalid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(parsed, kind):
        raise ValueError(f"{column}: must be {described}")
    return parsed
