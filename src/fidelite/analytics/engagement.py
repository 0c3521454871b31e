"""Engagement: how members interact with the program, per period, across kinds of action.

Read from the program database (the events it processed): purchases, refunds are left
out (a refund is not engagement), sign-ups, reviews, survey answers, social actions,
portal visits and any custom action the business sends. For period P:

* active members = members with at least one interaction in P;
* interactions = events in P; per active member = interactions / active members;
* multi-kind members = active members with two or more kinds of interaction in P (e.g.
  a purchase and a review), and their share of the active members;
* one ``kind_<kind>`` column per kind of interaction: its count in P (``kind_purchase``,
  ``kind_review``). The prefix keeps a custom event type named like a column (``start``,
  ``period``, ``interactions``) from overwriting it: no fixed column starts with
  ``kind_``.

Periods are local calendar periods in the business time zone; every period between the
first and the last interaction is listed, empty ones included. The counting is one
Ibis expression run on DuckDB. A program without any interaction is :class:`NoEvents`
(``fidelite report`` then says so in its engagement section); a program the database
does not hold, the error naming those it holds.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ibis
import pyarrow as pa
from sqlalchemy import select

from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.period import Period, bounds, index_expr, label
from fidelite.analytics.metrics.result import MetricResult, percent
from fidelite.analytics.programdb import (
    database_name,
    missing_program,
    program_ids,
    program_source_name,
)
from fidelite.engine.event import REFUND
from fidelite.processing.tables import events
from fidelite.store import Database


class NoEvents(InputError):
    """The program is in the database but processed no event other than refunds (its
    members and points came straight through the ledger, as with ``fidelite demo``)."""


KIND_PREFIX = "kind_"
"""Prefix of the per-kind columns; no fixed column starts with it, so none is overwritten."""

DEFINITION = (
    "Engagement per {period}: active members = members with at least one interaction "
    "(any processed event except refunds) in the {period}; interactions per active member "
    "= interactions / active members; multi-kind members = active members with two or "
    "more kinds of interaction in the {period} (multi_kind_rate = their share x 100); "
    "kind_<type> = the interactions of that event type in the {period}. "
    "Local calendar periods in time zone {timezone}."
)


def engagement(url: str, program_id: str, period: Period, timezone: str = "UTC") -> MetricResult:
    """Engagement rows per period for ``program_id`` in the database at ``url``."""
    zone = _zone(timezone)
    interactions = _interactions(url, program_id, zone)
    table = ibis.memtable(interactions)
    t = table.mutate(idx=index_expr(table.day, period))
    per_member = t.group_by(["idx", "member"]).aggregate(kinds=t.kind.nunique())
    totals = per_member.group_by("idx").aggregate(
        active=per_member.count(), multi=(per_member.kinds >= 2).sum()
    )
    by_kind = t.group_by(["idx", "kind"]).aggregate(n=t.count())
    con = ibis.duckdb.connect()
    total_rows = con.to_pyarrow(totals).to_pylist()
    kind_rows = con.to_pyarrow(by_kind).to_pylist()
    rows = _rows(period, total_rows, kind_rows)
    # DuckDB always: the events are read straight from the database (no engine layer).
    parameters = {"period": period, "program": program_id, "timezone": timezone,
                  "database": program_source_name(url, program_id), "engine": "duckdb"}  # fmt: skip
    return MetricResult(
        "engagement", DEFINITION.format(period=period, timezone=timezone), parameters, rows
    )


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone '{timezone}'", file="--timezone") from exc


def _interactions(url: str, program_id: str, zone: ZoneInfo) -> pa.Table:
    """``member, kind, day`` (local date) of every non-refund event of the program."""
    db = Database(url)
    try:
        with db.read() as conn:
            found = conn.execute(
                select(events.c.member_ref, events.c.type, events.c.occurred_at)
                .where(events.c.program_id == program_id, events.c.type != REFUND)
                .order_by(events.c.occurred_at, events.c.event_id)
            ).all()
            held = program_ids(conn) if not found else []
    finally:
        db.dispose()
    if not found:
        if program_id not in held:
            raise missing_program(program_id, held, url)
        raise NoEvents(f"program '{program_id}' has no events", file=database_name(url))
    return pa.table(
        {
            "member": [r[0] for r in found],
            "kind": [r[1] for r in found],
            "day": [_local_day(r[2], zone) for r in found],
        }
    )


def _local_day(value: datetime, zone: ZoneInfo) -> date:
    """The local calendar day of a stored UTC time (naive values are UTC)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(zone).date()


def _rows(
    period: Period, totals: list[dict[str, Any]], kinds: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_idx: dict[int, dict[str, int]] = defaultdict(dict)
    for r in kinds:
        by_idx[int(r["idx"])][str(r["kind"])] = int(r["n"])
    names = sorted({str(r["kind"]) for r in kinds})
    stats = {int(r["idx"]): r for r in totals}
    rows = []
    for idx in range(min(stats), max(stats) + 1):
        start, end = bounds(idx, period)
        counts = by_idx.get(idx, {})
        active = int(stats[idx]["active"]) if idx in stats else 0
        multi = int(stats[idx]["multi"] or 0) if idx in stats else 0
        interactions = sum(counts.values())
        row: dict[str, Any] = {
            "period": label(idx, period), "start": start.isoformat(), "end": end.isoformat(),
            "active_members": active, "interactions": interactions,
            "interactions_per_active_member": round(interactions / active, 4) if active else None,
            "multi_kind_members": multi, "multi_kind_rate": percent(multi, active),
        }  # fmt: skip
        row.update({f"{KIND_PREFIX}{name}": counts.get(name, 0) for name in names})
        rows.append(row)
    return rows
