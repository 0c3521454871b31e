"""Errors raised for bad analytics input.

One error names the file, the row (a 1-based line number for CSV, counting the header,
or a 1-based row number for Parquet) and the column, so a user can open the file and
fix it. Loading stops at the first problem: nothing half-computed is returned.
"""

from __future__ import annotations


class InputError(ValueError):
    """A transactions, subscriptions or surveys file cannot be used as given."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        row: int | None = None,
        column: str | None = None,
        row_label: str = "line",
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.reason = message
        where = file
        if row is not None:
            where += f", {row_label} {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")


class EngineUnavailable(RuntimeError):
    """The chosen engine cannot run on this machine: Spark without pyspark installed, or
    without a Java it can start. Nothing was computed; the message says what is missing."""
