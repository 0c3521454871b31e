"""A quote opened in a CSV cell and never closed refuses the whole import file, naming
the line where it opens: read leniently, it swallowed every later line into that cell
and the rows after it were silently lost (a 1,000-row file imported 3). A quoted cell
holding a line break, closed, is one cell, as CSV allows."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

from tests.cli.support import fidelite

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
HEADER = "event_id,type,member,at,amount,store\n"
QUOTE_ADVICE = (
    "a quote opened on this line is never closed, so it takes in every later line and no "
    'row after it can be told apart (a quote inside a quoted value is doubled: ""); nothing '
    "was imported"
)


def events_file(path: Path, rows: int, bad_row: int) -> Path:
    """``rows`` purchases; data row ``bad_row`` (1-based) has the store ``"Bar``."""
    lines = [HEADER]
    for n in range(1, rows + 1):
        store = '"Bar' if n == bad_row else "S1"
        lines.append(f"e{n},purchase,ann,2026-05-10T10:00:00+02:00,10,{store}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def setup(tmp_path: Path) -> tuple[Path, str]:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    return program, db


def table_rows(tmp_path: Path, table: str) -> int:
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_an_unclosed_quote_refuses_the_events_file(tmp_path: Path) -> None:
    program, db = setup(tmp_path)
    file = events_file(tmp_path / "events.csv", 1000, bad_row=4)  # header line 1: line 5
    done = fidelite("import", "events", file, "-p", program, "-f", "json", db=db, ok=False)
    assert done.returncode != 0
    assert json.loads(done.stdout) == {
        "error": {
            "code": "invalid_file",
            "message": f"{file}: line 5: badly quoted record: " + QUOTE_ADVICE,
        }
    }
    assert (table_rows(tmp_path, "processed_events"), table_rows(tmp_path, "members")) == (0, 0)
    assert not (tmp_path / "events.csv.rejects.csv").exists()


def test_an_unclosed_quote_refuses_the_members_file(tmp_path: Path) -> None:
    program, db = setup(tmp_path)
    file = tmp_path / "crm.csv"
    file.write_text('member,segments\nann,vip\nbob,"vip\ncid,vip\n', encoding="utf-8")
    done = fidelite("import", "members", file, "-p", program, "-f", "json", db=db, ok=False)
    assert json.loads(done.stdout)["error"] == {
        "code": "invalid_file",
        "message": f"{file}: line 3: badly quoted record: " + QUOTE_ADVICE,
    }
    assert table_rows(tmp_path, "members") == 0


def test_a_quote_not_doubled_inside_a_quoted_cell_rejects_that_row_alone(
    tmp_path: Path,
) -> None:
    """``"Bar"s`` (a quote inside a quoted value not doubled) ends its record with its
    line, so the rows around it are clear: that row is rejected, saying why, and the
    rows after it import, numbered as before (a quoted line break after it too)."""
    program, db = setup(tmp_path)
    file = tmp_path / "events.csv"
    file.write_text(HEADER + "e1,purchase,ann,2026-05-10T10:00:00+02:00,10,S1\n"
                    'e2,purchase,ann,2026-05-10T11:00:00+02:00,10,"Bar"s\n'
                    'e3,purchase,ann,2026-05-10T12:00:00+02:00,10,"Main\nst"\n'
                    'e4,purchase,ann,2026-05-10T13:00:00+02:00,10,"Joe"s Bar"\n'
                    "e5,purchase,ann,2026-05-10T14:00:00+02:00,10,S1\n")  # fmt: skip
    done = fidelite("import", "events", file, "-p", program, "-f", "json", db=db)
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["processed"], summary["rejected"]) == (5, 3, 2)
    with (tmp_path / "events.csv.rejects.csv").open(encoding="utf-8", newline="") as handle:
        rejects = [(r["row"], r["event_id"], r["message"]) for r in csv.DictReader(handle)]
    advice = 'a quote inside a quoted value must be doubled ("")'
    assert rejects == [
        ("3", "e2", f"(row): characters 's' after the closing quote of cell 6 (store): {advice}"),
        (
            "5",
            "e4",
            "(row): characters 's Bar\"' after the closing quote of cell 6 (store): " + advice,
        ),
    ]
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        query = "SELECT event_id, amount FROM processed_events ORDER BY event_id"
        assert conn.execute(query).fetchall() == [("e1", 10), ("e3", 10), ("e5", 10)]


def test_white_space_after_a_closing_quote_imports_the_row(tmp_path: Path) -> None:
    """``"paris, 1" `` (a space after the quote, as some tools write) is the cell
    ``paris, 1 ``, trimmed as any cell: the row imports, as it always did."""
    program, db = setup(tmp_path)
    file = tmp_path / "events.csv"
    file.write_text(HEADER + 'e1,purchase,ann,2026-05-10T10:00:00+02:00,10,"paris, 1" \n'
                    'e2,purchase,ann,2026-05-10T11:00:00+02:00,"12.5"\t,S1\n')  # fmt: skip
    done = fidelite("import", "events", file, "-p", program, "-f", "json", db=db)
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["processed"], summary["rejected"]) == (2, 2, 0)
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        query = "SELECT event_id, amount FROM processed_events ORDER BY event_id"
        assert conn.execute(query).fetchall() == [("e1", 10), ("e2", 12.5)]
    assert not (tmp_path / "events.csv.rejects.csv").exists()


def test_a_closed_quoted_cell_holding_a_line_break_imports(tmp_path: Path) -> None:
    """Legal CSV: the cell spans two lines; the rows after it import, numbered by record."""
    program, db = setup(tmp_path)
    file = tmp_path / "events.csv"
    file.write_text(HEADER + 'e1,purchase,ann,2026-05-10T10:00:00+02:00,10,"Main\nst"\n'
                    "e2,purchase,ann,2026-05-10T11:00:00+02:00,10,S1\n"
                    "e3,purchase,ann,2026-05-10T12:00:00+02:00,10,S1\n")  # fmt: skip
    done = fidelite("import", "events", file, "-p", program, "-f", "json", db=db)
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["processed"], summary["rejected"]) == (3, 3, 0)
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        query = "SELECT event_id, amount FROM processed_events ORDER BY event_id"
        assert conn.execute(query).fetchall() == [("e1", 10), ("e2", 10), ("e3", 10)]
