"""`fidelite report` takes the inputs `fidelite metrics` takes: a program database (SQLite
file, URL, PostgreSQL), every column-mapping option, --delimiter; and it writes nothing
on a bad input or a bad --out."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fidelite.analytics.programdb import database_name
from fidelite.cli.main import _register, app
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import fidelite

_register()

PROGRAM = """\
id: cafe
name: Cafe
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""


def _event(event_id: str, kind: str, member: str, at: str, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at, **extra})


def _run_program(db: Database) -> None:
    """ann buys in January and February (one refund), bob at 23:30 UTC on 31 January."""
    processor = EventProcessor(db, parse_program(PROGRAM))
    for e in [
        _event("s1", "signup", "ann", "2024-01-02T09:00:00+01:00"),
        _event("p1", "purchase", "ann", "2024-01-05T10:00:00+01:00", amount=Decimal("20")),
        _event("p2", "purchase", "bob", "2024-01-31T23:30:00+00:00", amount=Decimal("15")),
        _event("p3", "purchase", "ann", "2024-02-10T10:00:00+01:00", amount=Decimal("30.50")),
        _event("r1", "refund", "ann", "2024-02-12T10:00:00+01:00", amount=Decimal("10"),
               refund_of="p3"),
    ]:  # fmt: skip
        processor.process(e)


def _report(*args: str, code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["report", *args, "--format", "json"])
    assert result.exit_code == code, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_report_reads_a_program_database_url(db: Database, tmp_path: Path) -> None:
    _run_program(db)
    out = tmp_path / "out"
    _report(f"{db.url}#cafe", "--out", str(out), "--timezone", "Europe/Paris")
    data = json.loads((out / "report.json").read_text())
    assert data["input"]["input"] == f"{database_name(db.url)}#cafe"
    assert data["input"]["rows"] == 4  # three purchases and the refund; not the sign-up
    months = [r["period"] for r in data["metrics"]["retention"]["rows"]]
    assert months == ["2024-01", "2024-02"]  # bob's 23:30 UTC purchase is on 1 Feb in Paris
    # ann: orders p1 and p3 (the refund is not an order); bob: p2.
    assert data["metrics"]["repeat_rate"]["rows"][0]["repeat_purchase_rate"] == 50.0


def test_report_reads_a_sqlite_file_given_by_its_path(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _run_program(db)
    db.dispose()
    out = tmp_path / "out"
    _report(str(path), "--out", str(out))
    data = json.loads((out / "report.json").read_text())
    assert data["input"]["input"] == f"sqlite:///{path.resolve()}#cafe"
    assert data["metrics"]["repeat_rate"]["rows"][0]["customers"] == 2


@pytest.mark.parametrize("form", ["{dir}/none.db", "sqlite:///{dir}/none.db#cafe"])
def test_report_on_a_missing_database_creates_nothing(tmp_path: Path, form: str) -> None:
    out = tmp_path / "out"
    error = _report(form.format(dir=tmp_path), "--out", str(out), code=1)["error"]
    assert error["code"] == "bad_input"
    assert error["message"].endswith(
        "database file not found (name a program database as sqlite:///PATH.db#PROGRAM "
        "or PATH.db#PROGRAM)"
    )
    assert list(tmp_path.iterdir()) == []


def test_report_refuses_an_out_that_is_a_file(write_csv: Callable[..., Path]) -> None:
    tx = write_csv("customer_id,timestamp,amount\na,2024-01-01,1")
    out = tx.parent / "afile"
    out.write_text("keep me")
    error = _report(str(tx), "--out", str(out), code=2)["error"]
    assert error == {
        "code": "usage",
        "message": f"--out {out} is a file: give a directory (it is created when missing)",
    }
    assert out.read_text() == "keep me"


def test_report_format_is_table_or_json(write_csv: Callable[..., Path]) -> None:
    tx = write_csv("customer_id,timestamp,amount\na,2024-01-01,1")
    result = CliRunner().invoke(
        app, ["report", str(tx), "--out", str(tx.parent / "o"), "-f", "csv"]
    )
    assert result.exit_code == 2
    assert not (tx.parent / "o").exists()
    help_text = CliRunner().invoke(app, ["report", "--help"]).output
    assert "table|json" in help_text and "table|json|csv" not in help_text


def test_report_says_where_it_wrote_on_standard_output(
    write_csv: Callable[..., Path],
) -> None:
    """The command's result goes to standard output, as the docs say (it went to
    standard error, leaving standard output empty)."""
    tx = write_csv("customer_id,timestamp,amount\na,2024-01-01,1\na,2024-02-01,2")
    out = tx.parent / "o"
    proc = fidelite("report", tx, "--out", out)
    assert proc.stdout == f"Report written: {out / 'report.html'} and {out / 'report.json'}\n"


def test_report_takes_every_mapping_option(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(
        "client;date;total;ticket;sku;cat;qty;ch;code;ret\n"
        "A;2024-01-03;10;o1;p1;drinks;1;shop;;no\n"
        "A;2024-02-10;30;o2;p2;food;1;web;SPRING;no\n"
        "B;2024-01-20;50;o3;p1;drinks;2;shop;;no\n"
        "C;2024-02-05;5,5;o4;p1;drinks;1;shop;;no\n"
    )
    (tmp_path / "answers.csv").write_text(
        "who,at,q,value\nA,2024-01-05,nps,10\nB,2024-01-06,nps,3\nC,2024-03-01,nps,9\n"
    )
    (tmp_path / "subs.csv").write_text(
        "who,monthly,from,until\nA,10,01/01/2024,10/02/2024\nB,20,01/01/2024,\n"
    )
    out = tmp_path / "out"
    _report(
        str(tmp_path / "tx.csv"), "--out", str(out), "--delimiter", ";",
        "--customer-col", "client", "--time-col", "date", "--amount-col", "total",
        "--order-col", "ticket", "--product-col", "sku", "--category-col", "cat",
        "--quantity-col", "qty", "--channel-col", "ch", "--coupon-col", "code",
        "--refund-col", "ret",
        "--surveys", str(tmp_path / "answers.csv"), "--survey-customer-col", "who",
        "--survey-time-col", "at", "--question-col", "q", "--score-col", "value",
        "--subscriptions", str(tmp_path / "subs.csv"), "--subscription-customer-col", "who",
        "--mrr-col", "monthly", "--start-col", "from", "--end-col", "until",
    )  # fmt: skip
    data = json.loads((out / "report.json").read_text())
    assert data["input"]["optional_columns"] == [
        "category", "channel", "coupon_code", "order_id", "product_id", "quantity", "refund"
    ]  # fmt: skip
    assert data["metrics"]["pareto"]["summary"]["revenue"] == 95.5  # 10 + 30 + 50 + 5,5
    trend = data["surveys"]["nps_trend"]["rows"]
    assert [(r["period"], r["nps"]) for r in trend] == [
        ("2024-01", 0.0), ("2024-02", None), ("2024-03", 100.0)
    ]  # fmt: skip
    revenue = data["revenue"]["mrr"]["rows"]
    assert [(r["period"], r["starting_mrr"], r["churned_mrr"]) for r in revenue] == [
        ("2024-01", 0.0, 0.0), ("2024-02", 30.0, 10.0)
    ]  # fmt: skip  # both start on 1 January: January's new MRR


def test_report_delimiter_option_reaches_the_reader(write_csv: Callable[..., Path]) -> None:
    tx = write_csv("customer_id;timestamp;amount\na;2024-01-01;1")
    error = _report(str(tx), "--out", str(tx.parent / "o"), "--delimiter", "|", code=1)["error"]
    assert error["message"].endswith(
        "missing required column 'customer_id' (columns found: customer_id;timestamp;amount)"
    )
    assert not (tx.parent / "o").exists()
