"""The first purchase (segments) and the latest answer (loyalty-kinds) are the earliest
and the latest instant, not local time: in the hour repeated when the clocks go back
(Paris, 27 Oct 2024), 02:30+02:00 (00:30 UTC) comes before 02:10+01:00 (01:10 UTC)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.cli.main import _register, app

_register()

TX = (
    "customer_id,timestamp,amount,channel\n"
    "a,2024-10-27T02:30:00+02:00,10,web\n"
    "a,2024-10-27T02:10:00+01:00,10,store\n"
)


@pytest.mark.parametrize("materialize", [True, False])
def test_first_purchase_is_the_earliest_instant(tmp_path: Path, materialize: bool) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(TX)
    opts = LoadOptions(timezone="Europe/Paris", segment_column="channel", materialize=materialize)
    loaded = load_transactions(path, opts)
    con = loaded.connection
    assert con.execute("SELECT customer_id, segment FROM segment_assignments").fetchall() == [
        ("a", "web")
    ]
    columns = [r[0] for r in con.execute("DESCRIBE transactions").fetchall()]
    assert "segment_order" not in columns and "segment_value" not in columns
    assert loaded.segmentation is not None and loaded.segmentation.values == ("web",)


def _json(args: list[str]) -> dict:
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    out: dict = json.loads(result.stdout)
    return out


def test_cli_repeat_rate_segment(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(TX)
    out = _json(["metrics", "repeat-rate", "-i", str(path), "--segment-col", "channel",
                 "--timezone", "Europe/Paris"])  # fmt: skip
    assert [(r["segment"], r["customers"]) for r in out["rows"]] == [("web", 1)]


def test_latest_answer_is_the_latest_instant(tmp_path: Path) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,timestamp,amount\na,2024-10-01,10\na,2024-10-10,10\n"
                  "a,2024-10-27,10\n")  # fmt: skip
    ans = tmp_path / "ans.csv"
    ans.write_text(
        "customer_id,timestamp,question,score\n"
        "a,2024-10-27T02:10:00+01:00,nps,10\n"
        "a,2024-10-27T02:30:00+02:00,nps,3\n"
    )
    out = _json(["metrics", "loyalty-kinds", "-i", str(tx), "--surveys", str(ans),
                 "--timezone", "Europe/Paris"])  # fmt: skip
    row = out["rows"][0]
    assert (row["customer_id"], row["recommend"], row["kind"]) == ("a", 10.0, "truly loyal")


def test_answers_first_answer_segment(tmp_path: Path) -> None:
    ans = tmp_path / "ans.csv"
    ans.write_text(
        "customer_id,timestamp,question,score,channel\n"
        "a,2024-10-27T02:10:00+01:00,nps,10,store\n"
        "a,2024-10-27T02:30:00+02:00,nps,3,web\n"
    )
    out = _json(["metrics", "nps", "--surveys", str(ans), "--segment-col", "channel",
                 "--timezone", "Europe/Paris"])  # fmt: skip
    assert [(r["segment"], r["answers"]) for r in out["rows"]] == [("web", 2)]


# A time without an offset is the wall-clock time it says, even one the clocks skip
# (Paris, 31 Mar 2024, 02:00 -> 03:00): 02:30 comes before 03:10, though DuckDB reads the
# skipped 02:30 as 03:30 summer time.
GAP_TX = (
    "customer_id,timestamp,amount,channel\n"
    "a,2024-03-31 02:30:00,10,web\n"
    "a,2024-03-31 03:10:00,10,store\n"
    "a,2024-03-31 01:59:00,10,phone\n"
    "b,2024-03-31 03:10:00,5,store\n"
    "b,2024-03-31 02:30:00,5,web\n"
)
GAP_SV = (
    "customer_id,timestamp,question,score,region\n"
    "a,2024-03-31 02:30:00,nps,10,north\n"
    "a,2024-03-31 03:10:00,nps,0,south\n"
)


def test_a_skipped_wall_clock_time_keeps_its_order(tmp_path: Path) -> None:
    tx, sv = tmp_path / "tx.csv", tmp_path / "sv.csv"
    tx.write_text(GAP_TX)
    sv.write_text(GAP_SV)
    paris = ["--timezone", "Europe/Paris"]
    rate = _json(["metrics", "repeat-rate", "-i", str(tx), "--segment-col", "channel", *paris])
    assert [(r["segment"], r["customers"]) for r in rate["rows"]] == [("phone", 1), ("web", 1)]
    nps = _json(["metrics", "nps", "--surveys", str(sv), "--segment-col", "region", *paris])
    assert [(r["segment"], r["answers"]) for r in nps["rows"]] == [("north", 2)]
    kinds = _json(["metrics", "loyalty-kinds", "-i", str(tx), "--surveys", str(sv), *paris])
    assert [(r["customer_id"], r["recommend"]) for r in kinds["rows"]] == [("a", 0.0), ("b", None)]
