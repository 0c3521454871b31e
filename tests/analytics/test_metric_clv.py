"""Simple CLV when the file holds no purchase at all: null figures and a note, no crash."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics.clv import simple_clv

ONLY_REFUNDS = """
customer_id,timestamp,amount
a,2024-01-01,-5
b,2024-01-03,-7
"""


def _fidelite() -> str:
    return shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")


def test_simple_clv_without_purchases_is_null_with_a_note(
    write_csv: Callable[..., Path],
) -> None:
    result = simple_clv(open_dataset(write_csv(ONLY_REFUNDS)))
    assert result.rows == [
        {
            "average_order_value": None,
            "purchases_per_year": None,
            "lifespan_years": None,
            "lifespan_source": "observed mean",
            "clv": None,
            "customers": 0,
            "orders": 0,
            "observed_years": round(3 / 365.25, 4),  # Jan 1 to Jan 3, inclusive
        }
    ]
    assert result.summary == {
        "note": "no purchases in the data (every row is a refund): CLV is undefined"
    }


def test_simple_clv_without_purchases_keeps_a_given_lifespan_and_no_value(
    write_csv: Callable[..., Path],
) -> None:
    row = simple_clv(open_dataset(write_csv(ONLY_REFUNDS)), lifespan_years=2.0).rows[0]
    assert (row["lifespan_years"], row["lifespan_source"], row["clv"]) == (2.0, "given", None)


def test_clv_cli_and_report_on_a_file_of_refunds(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_csv(ONLY_REFUNDS)
    proc = subprocess.run(
        [_fidelite(), "metrics", "clv", "-i", str(path), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["rows"][0]["clv"], out["rows"][0]["orders"]) == (None, 0)
    assert "every row is a refund" in out["summary"]["note"]
    report = subprocess.run(
        [_fidelite(), "report", str(path), "--out", str(tmp_path / "rep")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["metrics"]["clv"]["rows"][0]["average_order_value"] is None
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "<th>Simple CLV</th><td>n/a</td>" in html
    assert "None" not in html
