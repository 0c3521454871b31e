"""The program's own figures, when the report is given a program database
(``fidelite report URL#PROGRAM``): program KPIs and engagement per month.

A transactions file has no points, members or interactions, so these sections appear
only for a program database. The database keeps no point value: the liability and cost
of rewards stay null here (``fidelite metrics program-kpis -P PROGRAM.yaml`` gives
them), and ``not_included`` says so. A program that processed no event (members and
points entered straight in the ledger, as ``fidelite demo`` does) has no engagement:
``not_included.engagement`` and the section say so.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from fidelite.analytics.engagement import NoEvents, engagement
from fidelite.analytics.kpis import program_kpis
from fidelite.report.numbers import rate

Section = Callable[[str, str, str, str, str], str]
MONTHS = 12  # the table shows the last twelve months; report.json keeps them all
# Every term of the points identity the definition states, so it can be checked.
KPI_COLUMNS = (
    ("period", "month"), ("members_total", "members"), ("active_members", "active"),
    ("points_earned", "earned"), ("points_redeemed", "redeemed"),
    ("points_expired", "expired"), ("points_adjusted", "adjusted"),
    ("points_written_off", "written off"), ("points_outstanding", "outstanding"),
    ("points_owed", "owed"), ("redemptions", "redemptions"),
)  # fmt: skip
ENGAGEMENT_COLUMNS = (
    ("period", "month"), ("active_members", "active members"),
    ("interactions", "interactions"), ("multi_kind_rate", "multi-kind %"),
)  # fmt: skip


def compute(
    program_db: tuple[str, str] | None, timezone: str, step: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``{program_kpis, engagement}`` metric results of ``program_db`` (``(url, program
    id)``, the program database the report reads), ``{}`` for a transactions file
    (``None``); with the sections left out and why: ``engagement`` when the program
    processed no event (its members and points came straight through the ledger)."""
    if program_db is None:
        return {}, {}
    step("Computing program KPIs and engagement")
    url, program_id = program_db
    found = {"program_kpis": program_kpis(url, program_id, timezone=timezone).to_dict()}
    try:
        found["engagement"] = engagement(url, program_id, "month", timezone).to_dict()
    except NoEvents as exc:
        return found, {"engagement": f"{exc.reason}: {NO_EVENTS}"}
    return found, {}


NO_EVENTS = (
    "engagement counts the events the program processed (purchases, sign-ups, reviews, "
    "custom events; refunds excepted), and members and points entered straight in the "
    "ledger (fidelite member add, ledger earn, fidelite demo) make none"
)


def section(metrics: dict[str, Any], make: Section, left_out: dict[str, str]) -> str:
    """The program KPIs and engagement tables (the last twelve months); without
    engagement, why (``left_out``: the report's ``not_included``)."""
    kpis, engaged = metrics["program_kpis"], metrics.get("engagement")
    if engaged is None:
        why = left_out.get("engagement", "not computed")
        second = f"<p><b>No engagement:</b> {escape(why)}.</p>"
        definition = kpis["definition"]
    else:
        second = _table(engaged["rows"], ENGAGEMENT_COLUMNS, "Engagement per month")
        definition = f"{kpis['definition']} {engaged['definition']}"
    return make(
        "Program KPIs and engagement",
        "Per month: members, points earned, redeemed, expired, adjusted, written off, "
        "outstanding and owed, redemptions; then the members who interacted with the "
        "program and how.",
        "Outstanding points are what the program owes its members, owed points what "
        "members in debt owe it; from one month to the next, outstanding - owed changes "
        "by earned - redeemed - expired + adjusted + written off. Rising redeemed points "
        "mean members use their points. Multi-kind members did two or more kinds of "
        "things (e.g. bought and reviewed) in the month.",
        _table(kpis["rows"], KPI_COLUMNS, "Program KPIs per month") + second,
        definition,
    )


def _table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], caption: str) -> str:
    """The last months' rows, captioned, the column headers in ``<thead>``."""
    head = "".join(f"<th>{escape(title)}</th>" for _, title in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(key, r[key]))}</td>" for key, _ in columns) + "</tr>"
        for r in rows[-MONTHS:]
    )
    return (
        f"<table><caption>{escape(caption)} (the last {MONTHS} months at most)</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _cell(key: str, value: Any) -> str:
    if key.endswith("_rate"):
        return rate(value)
    return f"{value:,}" if isinstance(value, int) else str(value)
