"""Dates that also read month first: the report warns first, as the metrics commands do.

Every file below has no day above 12, so each date reads either way; it is read day
first. The warning names the file and is in report.json's ``warnings``, at the top of
report.html (before any section) and on standard error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html import escape
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

CLI = [sys.executable, "-c", "from fidelite.cli.main import main; main()"]
ENV = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
ENV["COLUMNS"] = "400"

DAY_FIRST = """customer_id,timestamp,amount,order_id
A,03/01/2024,10,o1
A,10/02/2024,30,o2
B,12/01/2024,50,o3
C,05/02/2024,5,o4
"""
ISO = """customer_id,timestamp,amount,order_id
A,2024-01-03,10,o1
A,2024-02-10,30,o2
B,2024-01-20,50,o3
C,2024-02-05,5,o4
"""
ANSWERS = """customer_id,timestamp,question,score
A,05/01/2024,nps,10
B,06/01/2024,nps,3
"""
SUBS = """customer_id,mrr,start,end
A,10,01/01/2024,10/02/2024
"""
TX_WARNING = (
    "every date also reads month first (e.g. '03/01/2024'): read day first, as %d/%m/%Y; "
    "pass --date-format %m/%d/%Y if the month comes first"
)
# --date-format would read the transactions that way, not these files: not advised
OTHER_FILE = (
    "; --date-format reads the transactions only: if this file's month "
    "comes first, write its dates as YYYY-MM-DD"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "report", *args], capture_output=True, text=True, check=False, env=ENV
    )


def test_day_first_transactions_are_warned_of_everywhere(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(DAY_FIRST)
    out = tmp_path / "out"
    run = _run(str(src), "--out", str(out))
    assert run.returncode == 0, run.stderr
    warning = f"Dates of the transactions file {src}: {TX_WARNING}"
    assert run.stderr == f"Warning: {warning}\n"
    report = json.loads((out / "report.json").read_text())
    assert report["warnings"] == [warning]
    assert report["input"]["date_warning"] == TX_WARNING
    html = (out / "report.html").read_text()
    box = (
        "<section class='warnings' aria-labelledby='read-first'><h2 id='read-first'>Read "
        f"this first</h2><ul><li>{escape(warning)}</li></ul></section>"
    )
    # right under the Input line (which says how the dates were read), before any section
    assert "dates read as %d/%m/%Y &middot; engine duckdb &middot; generated " in html
    assert f"</p>{box}<section><h2>Key figures</h2>" in html
    assert html.count("<section") == html.count("</section>")


def test_json_format_lists_the_warning(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(DAY_FIRST)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["warnings"] == [f"Dates of the transactions file {src}: {TX_WARNING}"]


def test_survey_and_subscription_dates_are_warned_of_with_their_file(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(ISO)
    (tmp_path / "answers.csv").write_text(ANSWERS)
    (tmp_path / "subs.csv").write_text(SUBS)
    out = tmp_path / "out"
    run = _run(str(tmp_path / "tx.csv"), "--out", str(out),
               "--surveys", str(tmp_path / "answers.csv"),
               "--subscriptions", str(tmp_path / "subs.csv"))  # fmt: skip
    assert run.returncode == 0, run.stderr
    expected = [
        f"Dates of the survey answers file {tmp_path / 'answers.csv'}: every date also "
        f"reads month first (e.g. '05/01/2024'): read day first, as %d/%m/%Y{OTHER_FILE}",
        f"Dates of the subscriptions file {tmp_path / 'subs.csv'}: every date also reads "
        f"month first (e.g. '10/02/2024'): read day first, as %d/%m/%Y{OTHER_FILE}",
    ]
    assert json.loads((out / "report.json").read_text())["warnings"] == expected
    assert run.stderr == "".join(f"Warning: {w}\n" for w in expected)
    html = (out / "report.html").read_text()
    assert "".join(f"<li>{escape(w)}</li>" for w in expected) in html


def test_dates_read_one_way_give_no_warning_box(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(ISO)
    out = tmp_path / "out"
    run = _run(str(src), "--out", str(out))
    assert (run.returncode, run.stderr) == (0, "")
    assert json.loads((out / "report.json").read_text())["warnings"] == []
    html = (out / "report.html").read_text()
    assert "Read this first" not in html
    assert "dates read as ISO 8601 &middot;" in html


def test_a_rejected_survey_file_writes_nothing_and_warns_of_nothing(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(DAY_FIRST)
    bad = tmp_path / "answers.csv"
    bad.write_text("customer_id,timestamp,question,score\nA,yesterday,nps,10\n")
    out = tmp_path / "out"
    run = _run(str(src), "--out", str(out), "--surveys", str(bad))
    assert run.returncode == 1
    assert "Warning" not in run.stderr and run.stderr.startswith("error [bad_input] ")
    assert not out.exists()
