"""Bulk import of events from CSV or Parquet, through the same processor as the API.

Each row is one event, processed atomically on its own (under a savepoint, many
rows per transaction): a bad row is reported (row number, column, reason) and
skipped, and never stops the import or leaves part of itself written. Re-running
the same file changes nothing: events already recorded are counted as duplicates.

Columns: ``event_id``, ``type``, ``member``, ``at`` (ISO 8601 with offset), ``amount``,
and optionally ``channel``, ``store``, ``coupon``, ``refund_of``, ``items`` (JSON list
of ``{sku, category, quantity, price}``) and ``attributes`` (JSON object). Empty cells
are absent values. Row numbers are those a spreadsheet shows (the header is row 1).
"""

from __future__ import annotations

import csv
import importlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from fidelite.engine import Event
from fidelite.ledger import Rejected
from fidelite.processing.processor import EventProcessor, Outcome, ProcessingError

REQUIRED = ("event_id", "type", "member", "at")
OPTIONAL = ("amount", "channel", "store", "coupon", "refund_of", "items", "attributes")
JSON_COLUMNS = ("items", "attributes")


class ImportFileError(ValueError):
    """The file itself cannot be imported (unreadable, wrong format, missing columns)."""


@dataclass(frozen=True)
class RejectedRow:
    """A row that was not imported, and why."""

    row: int
    event_id: str
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


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, cells)`` of a CSV or Parquet file; checks the columns first."""
    if path.suffix.lower() == ".parquet":
        yield from _parquet_rows(path)
        return
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        _check_columns(path, reader.fieldnames or [])
        for index, row in enumerate(reader, start=2):
            yield index, {k: v for k, v in row.items() if k is not None}


def _parquet(path: Path) -> Any:
    pq = importlib.import_module("pyarrow.parquet")
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ImportFileError(f"{path}: not a readable Parquet file: {exc}") from None


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    table = _parquet(path)
    _check_columns(path, list(table.schema_arrow.names))
    number = 2
    for batch in table.iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            yield number, row
            number += 1


def _check_columns(path: Path, columns: Sequence[str]) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ImportFileError(f"{path}: missing column(s): {', '.join(missing)}")
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
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
    chunk: int = 500,
) -> ImportReport:
    """Import every row of ``path``; ``progress`` is called with each row number done.

    Rows are committed ``chunk`` at a time (one transaction per chunk, a savepoint per
    row), which saves a commit per event. If the database itself fails, the current
    chunk is rolled back and the error raised; re-running the file resumes safely
    (recorded events count as duplicates).
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    report = ImportReport()
    rows = read_rows(path)
    while batch := list(islice(rows, chunk)):
        with processor.db.write() as conn:
            for number, cells in batch:
                _import_row(processor, conn, report, number, cells)
                if progress:
                    progress(number)
    return report


def _import_row(
    processor: EventProcessor,
    conn: Connection,
    report: ImportReport,
    number: int,
    cells: dict[str, Any],
) -> None:
    report.rows += 1
    event_id = str(cells.get("event_id") or "")
    try:
        event = row_to_event(cells)
        result = processor.process(event, conn=conn)
    except ValueError as exc:
        report.rejected.append(RejectedRow(number, event_id, "invalid_row", str(exc)))
    except ProcessingError as exc:
        report.rejected.append(RejectedRow(number, event_id, exc.code, exc.message))
    except Rejected as exc:
        report.rejected.append(RejectedRow(number, event_id, exc.code.value, exc.message))
    else:
        if result.outcome is Outcome.duplicate:
            report.duplicates += 1
        else:
            report.processed += 1


def write_rejects(path: Path, rejected: list[RejectedRow]) -> None:
    """Write the rejected rows as CSV (row, event_id, code, message)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "event_id", "code", "message"])
        for row in rejected:
            writer.writerow([row.row, row.event_id, row.code, row.message])
