"""The report and metrics of a program database whose program has no purchases, or
which does not hold the program named: real SQLite program databases built with the
CLI (``ledger open``, ``member add``, ``ledger earn/spend``, ``import events``)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import fidelite

PROGRAM = """\
id: cafe
name: Cafe
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: rev, on: [review], fixed: 10}
"""
# Sign-ups and reviews only: events, but no purchase.
EVENTS = """\
event_id,type,member,at,amount
s1,signup,ann,2024-01-05T10:00:00+00:00,
v1,review,ann,2024-01-06T10:00:00+00:00,
v2,review,bob,2024-02-07T10:00:00+00:00,
"""
NO_PURCHASES = (
    "program 'cafe' has no purchases: the purchase-based figures come from the purchases "
    "and refunds the program processed (events with an amount), and members and points "
    "entered straight in the ledger (fidelite member add, ledger earn, fidelite demo) "
    "make none"
)
PURCHASE_SECTIONS = [
    "retention", "new_vs_returning", "repeat_rate", "repurchase", "cohorts",
    "unbounded_cohorts", "pareto", "clv", "rfm_segments", "pareto_curve", "clv_models",
]  # fmt: skip
WARNING = (
    "program 'cafe' has no purchases: the report holds only the program's own figures "
    "(program KPIs, and engagement when it processed events); not_included says why each "
    "purchase-based section is left out"
)


def _ledger_only(tmp_path: Path) -> Path:
    """Program cafe with ann enrolled straight in the ledger: 120 points earned on
    2024-01-05, 50 spent on 2024-02-03; no event processed."""
    path = tmp_path / "ledger.db"
    db = f"sqlite:///{path}"
    fidelite("db", "upgrade", db=db)
    fidelite("ledger", "open", "cafe", db=db)
    fidelite("member", "add", "ann", "-p", "cafe", db=db)
    fidelite("ledger", "earn", "ann", "120", "-k", "e1", "-p", "cafe", "--at", "2024-01-05",
             db=db)  # fmt: skip
    fidelite("ledger", "spend", "ann", "50", "-k", "s1", "-p", "cafe", "--at", "2024-02-03",
             db=db)  # fmt: skip
    return path


def _events_only(tmp_path: Path, name: str = "events.db", *programs: str) -> Path:
    """Program cafe (and ``programs``, each with the same events) fed sign-ups and
    reviews through ``fidelite import events``."""
    path = tmp_path / name
    db = f"sqlite:///{path}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "events.csv").write_text(EVENTS)
    for program in ("cafe", *programs):
        (tmp_path / f"{program}.yaml").write_text(PROGRAM.replace("id: cafe", f"id: {program}"))
        fidelite("import", "events", tmp_path / "events.csv", "-p", tmp_path / f"{program}.yaml",
                 db=db)  # fmt: skip
    return path


def test_the_report_of_a_program_without_purchases_or_events_holds_its_kpis(
    tmp_path: Path,
) -> None:
    """Was: exit 1, "program 'cafe' has no purchases", no report at all."""
    path = _ledger_only(tmp_path)
    out = tmp_path / "out"
    proc = fidelite("report", path, "--out", out, "-f", "json")
    assert json.loads(proc.stdout) == {
        "report": {"html": str(out / "report.html"), "json": str(out / "report.json")},
        "warnings": [WARNING],
    }
    data = json.loads((out / "report.json").read_text())
    assert data["input"] == {
        "input": f"sqlite:///{path.resolve()}#cafe",
        "rows": 0,
        "timezone": "UTC",
        "engine": "duckdb",
    }
    assert list(data["metrics"]) == ["program_kpis"]
    keys = ("period", "members_total", "points_earned", "points_redeemed",
            "points_outstanding", "redemptions")  # fmt: skip
    assert [tuple(r[k] for k in keys) for r in data["metrics"]["program_kpis"]["rows"]] == [
        ("2024-01", 1, 120, 0, 120, 0),
        ("2024-02", 1, 0, 50, 70, 1),
    ]
    left_out = data["not_included"]
    assert {key: left_out[key] for key in PURCHASE_SECTIONS} == dict.fromkeys(
        PURCHASE_SECTIONS, NO_PURCHASES
    )
    assert left_out["engagement"] == (
        "program 'cafe' has no events: engagement counts the events the program processed "
        "(purchases, sign-ups, reviews, custom events; refunds excepted), and members and "
        "points entered straight in the ledger (fidelite member add, ledger earn, fidelite "
        "demo) make none"
    )
    assert "program_kpis" not in left_out
    assert not {"rfm_segments", "pareto_curve", "clv_models"} & set(data)
    html = (out / "report.html").read_text()
    assert "<h2>Program KPIs and engagement</h2>" in html
    assert "<p><b>No engagement:</b> program &#x27;cafe&#x27; has no events: " in html
    assert "<b>No purchases to measure:</b> program &#x27;cafe&#x27; has no purchases: " in html


def test_the_report_of_a_program_without_purchases_shows_its_engagement(
    tmp_path: Path,
) -> None:
    path = _events_only(tmp_path)
    out = tmp_path / "out"
    fidelite("report", f"sqlite:///{path}#cafe", "--out", out, "-f", "json")
    data = json.loads((out / "report.json").read_text())
    assert list(data["metrics"]) == ["program_kpis", "engagement"]
    # ann's review earns 10 in January, bob's in February (he joins then)
    keys = ("period", "members_total", "points_earned", "points_outstanding")
    assert [tuple(r[k] for k in keys) for r in data["metrics"]["program_kpis"]["rows"]] == [
        ("2024-01", 1, 10, 10),
        ("2024-02", 2, 10, 20),
    ]
    # January: ann signs up and reviews (two kinds); February: bob reviews.
    engaged = data["metrics"]["engagement"]["rows"]
    assert [(r["period"], r["active_members"], r["interactions"], r["multi_kind_members"],
             r["kind_signup"], r["kind_review"]) for r in engaged] == [
        ("2024-01", 1, 2, 1, 1, 1),
        ("2024-02", 1, 1, 0, 0, 1),
    ]  # fmt: skip
    left_out = data["not_included"]
    assert "engagement" not in left_out and "program_kpis" not in left_out
    assert left_out["retention"] == NO_PURCHASES
    assert data["warnings"] == [WARNING]
    html = (out / "report.html").read_text()
    assert "No engagement" not in html and "<th>multi-kind %</th>" in html


def test_every_command_names_a_program_the_database_does_not_hold(tmp_path: Path) -> None:
    """Was: retention and report "program 'nope' has no purchases", engagement "has no
    events"; only program-kpis said the program is not there."""
    path = _events_only(tmp_path, "shop.db", "tea")
    source = f"{path}#nope"
    message = f"sqlite:///{path.resolve()}: no program 'nope' in this database (it holds cafe, tea)"
    out = tmp_path / "out"
    for args in (
        ("metrics", "retention", "--input", source),
        ("metrics", "engagement", "--input", source),
        ("metrics", "program-kpis", "--db", source),
        ("report", source, "--out", out),
    ):
        proc = fidelite(*args, "-f", "json", ok=False)
        assert proc.returncode == 1, args
        error = json.loads(proc.stdout)["error"]
        assert (error["code"], error["message"]) == ("bad_input", message), args
    assert not out.exists()


def test_the_product_sections_of_a_database_report_say_what_applies(tmp_path: Path) -> None:
    """Was: "name it with --product-col", an option a program database cannot use."""
    path = _events_only(tmp_path)
    (tmp_path / "sales.csv").write_text(
        "event_id,type,member,at,amount\np1,purchase,ann,2024-02-10T10:00:00+00:00,25\n"
    )
    fidelite("import", "events", tmp_path / "sales.csv", "-p", tmp_path / "cafe.yaml",
             db=f"sqlite:///{path}")  # fmt: skip
    out = tmp_path / "out"
    fidelite("report", path, "--out", out, "-f", "json")
    data = json.loads((out / "report.json").read_text())
    assert data["metrics"]["repeat_rate"]["rows"][0]["customers"] == 1  # ann's purchase
    assert data["warnings"] == []
    left_out = data["not_included"]
    advice = (
        "needs a product per purchase, which the program database does not keep (a purchase "
        "event's items are used for its points, not stored): export the transactions with a "
        "product column to a CSV or Parquet file and run fidelite report FILE (--product-col "
        "COLUMN when it is not product_id), or fidelite metrics multi-product and basket on it"
    )
    assert (left_out["multi_product"], left_out["basket_affinity"]) == (advice, advice)
