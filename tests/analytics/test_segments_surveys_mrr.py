"""Survey metrics and MRR per customer segment (``--segment-col``, ``--segments``),
from small files computed by hand (SPEC §4: every metric per segment).

Answers (``store`` is the segment column)::

    a  first answer in Paris (10), then Lyon (3)   -> Paris
    b  Lyon (9)                                     -> Lyon
    c  first answer with no store (5), then Paris (8) -> (none)
    d  Paris (7)                                    -> Paris
    e  two answers at the same time, Paris and Lyon -> Lyon (first in byte order)

NPS by store: Paris 10, 3, 7 -> 1 promoter, 1 detractor of 3 = 0; Lyon 9, 6, 9 ->
2 promoters, 1 detractor of 3 = 33.3333; (none) 5, 8 -> 1 detractor of 2 = -50.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import fidelite

ANSWERS = """\
customer_id,timestamp,question,score,store
a,2026-01-05T10:00:00,nps,10,Paris
a,2026-02-05T10:00:00,nps,3,Lyon
b,2026-01-06T10:00:00,nps,9,Lyon
c,2026-01-07T10:00:00,nps,5,
c,2026-01-08T10:00:00,nps,8,Paris
d,2026-02-01T10:00:00,nps,7,Paris
e,2026-02-02T10:00:00,nps,6,Paris
e,2026-02-02T10:00:00,nps,9,Lyon
a,2026-01-05T10:00:00,csat,5,Paris
b,2026-01-06T10:00:00,csat,2,Lyon
c,2026-01-07T10:00:00,csat,4,
"""

# a: basic in the north, then pro in the south (stays north: the first subscription's);
# b: basic in the south, churned in February; c: pro with no region -> (none).
SUBSCRIPTIONS = """\
customer_id,plan,mrr,start,end,region
a,basic,10,2026-01-01,2026-03-15,north
a,pro,30,2026-03-15,,south
b,basic,10,2026-01-10,2026-02-20,south
c,pro,30,2026-02-01,,
"""


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_json(*args: str | Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(fidelite("metrics", *args, "-f", "json").stdout)
    return out


def refused(*args: str | Path, code: int = 1) -> str:
    proc = fidelite("metrics", *args, ok=False)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stdout == ""
    return " ".join(proc.stderr.split())


@pytest.fixture
def answers(tmp_path: Path) -> Path:
    return _file(tmp_path, "answers.csv", ANSWERS)


@pytest.fixture
def subscriptions(tmp_path: Path) -> Path:
    return _file(tmp_path, "subs.csv", SUBSCRIPTIONS)


def test_nps_per_store_of_the_first_answer(answers: Path) -> None:
    out = run_json("nps", "--surveys", answers, "--segment-col", "store")
    assert [(r["segment"], r["answers"], r["promoters"], r["passives"], r["detractors"], r["nps"])
            for r in out["rows"]] == [
        ("Lyon", 3, 2, 0, 1, 33.3333),
        ("Paris", 3, 1, 1, 1, 0.0),
        ("(none)", 2, 0, 1, 1, -50.0),
    ]  # fmt: skip
    assert out["parameters"]["segment_by"] == "store"
    assert "value of column 'store' on their first answer" in out["definition"]
    # every answer is in exactly one segment: the counts add up to the whole file's
    whole = run_json("nps", "--surveys", answers)["rows"][0]
    assert sum(r["answers"] for r in out["rows"]) == whole["answers"] == 8
    assert sum(r["promoters"] for r in out["rows"]) == whole["promoters"]


def test_nps_per_month_per_segment_of_a_segments_file(answers: Path, tmp_path: Path) -> None:
    """The segments file of `metrics rfm --format csv` or any customer_id,segment file;
    customers it does not list (d, e) are in (none)."""
    segs = _file(tmp_path, "segs.csv", "customer_id,segment\na,champions\nb,champions\nc,at risk\n")
    out = run_json("nps", "--surveys", answers, "--segments", segs, "--period", "month")
    assert [(r["segment"], r["period"], r["answers"], r["nps"]) for r in out["rows"]] == [
        ("at risk", "2026-01", 2, -50.0),
        ("at risk", "2026-02", 0, None),  # every segment lists the file's periods
        ("champions", "2026-01", 2, 100.0),
        ("champions", "2026-02", 1, -100.0),
        ("(none)", "2026-01", 0, None),
        ("(none)", "2026-02", 3, 0.0),  # d 7, e 6 and 9
    ]
    assert out["parameters"]["segment_by"] == str(segs)


def test_csat_and_the_other_survey_metrics_run_per_segment(answers: Path) -> None:
    rows = run_json("csat", "--surveys", answers, "--segment-col", "store")["rows"]
    assert [(r["segment"], r["answers"], r["satisfied"], r["csat"]) for r in rows] == [
        ("Lyon", 1, 0, 0.0),
        ("Paris", 1, 1, 100.0),
        ("(none)", 1, 1, 100.0),
    ]
    for name in ("ces", "loyalty-index", "share-of-wallet"):
        rows = run_json(name, "--surveys", answers, "--segment-col", "store")["rows"]
        assert [r["segment"] for r in rows] == ["Lyon", "Paris", "(none)"]


def test_survey_csv_per_segment_leads_with_the_segment(answers: Path) -> None:
    proc = fidelite("metrics", "nps", "--surveys", answers, "--segment-col", "store", "-f", "csv")
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == ["segment", "answers", "promoters", "passives", "detractors", "nps"]
    assert rows[1] == ["Lyon", "3", "2", "0", "1", "33.3333"]


def test_mrr_per_region_of_the_first_subscription(subscriptions: Path) -> None:
    out = run_json("mrr", "--subscriptions", subscriptions, "--segment-col", "region")
    got = [(r["segment"], r["period"], r["starting_mrr"], r["new_mrr"], r["expansion_mrr"],
            r["churned_mrr"], r["ending_mrr"]) for r in out["rows"]]  # fmt: skip
    assert got == [
        ("north", "2026-01", 0.0, 10.0, 0.0, 0.0, 10.0),
        ("north", "2026-02", 10.0, 0.0, 0.0, 0.0, 10.0),
        ("north", "2026-03", 10.0, 0.0, 20.0, 0.0, 30.0),  # a's upgrade stays in the north
        ("south", "2026-01", 0.0, 10.0, 0.0, 0.0, 10.0),
        ("south", "2026-02", 10.0, 0.0, 0.0, 10.0, 0.0),
        ("south", "2026-03", 0.0, 0.0, 0.0, 0.0, 0.0),  # the file's periods, for every segment
        ("(none)", "2026-01", 0.0, 0.0, 0.0, 0.0, 0.0),
        ("(none)", "2026-02", 0.0, 30.0, 0.0, 0.0, 30.0),
        ("(none)", "2026-03", 30.0, 0.0, 0.0, 0.0, 30.0),
    ]
    assert "on their first subscription" in out["definition"]
    # the segments' movements add up to the whole file's, period by period
    whole = {r["period"]: r for r in run_json("mrr", "--subscriptions", subscriptions)["rows"]}
    for field in ("starting_mrr", "new_mrr", "expansion_mrr", "churned_mrr", "ending_mrr"):
        for period, row in whole.items():
            parts = [r[field] for r in out["rows"] if r["period"] == period]
            assert sum(parts) == row[field], (field, period)


def test_mrr_per_segment_of_a_segments_file(subscriptions: Path, tmp_path: Path) -> None:
    segs = _file(tmp_path, "segs.csv", "customer_id,segment\na,big\nc,big\n")
    rows = run_json("mrr", "--subscriptions", subscriptions, "--segments", segs)["rows"]
    assert [(r["segment"], r["period"], r["ending_mrr"]) for r in rows] == [
        ("big", "2026-01", 10.0),
        ("big", "2026-02", 40.0),
        ("big", "2026-03", 60.0),
        ("(none)", "2026-01", 10.0),
        ("(none)", "2026-02", 0.0),
        ("(none)", "2026-03", 0.0),
    ]


def test_an_unknown_segment_column_is_named(answers: Path, subscriptions: Path) -> None:
    said = refused("nps", "--surveys", answers, "--segment-col", "shop")
    assert f"{answers}, column 'shop': no column 'shop' to segment by" in said
    said = refused("mrr", "--subscriptions", subscriptions, "--segment-col", "regoin")
    assert f"{subscriptions}, column 'regoin': no column 'regoin' to segment by" in said


def test_both_segment_options_are_a_usage_error(answers: Path, tmp_path: Path) -> None:
    segs = _file(tmp_path, "s.csv", "customer_id,segment\na,x\n")
    said = refused("nps", "--surveys", answers, "--segment-col", "store", "--segments", segs,
                   code=2)  # fmt: skip
    assert "give either --segment-col (a column of the survey answers file) or --segments" in said
    said = refused("mrr", "--subscriptions", answers, "--segments", segs, "--segment-col", "x",
                   code=2)  # fmt: skip
    assert "(a column of the subscriptions file)" in said
    proc = fidelite("metrics", "nps", "--surveys", answers, "--segment-col", " ", "-f", "json",
                    ok=False)  # fmt: skip
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["message"] == (
        "--segment-col: name a column of the survey answers file"
    )


def test_a_segment_value_none_is_refused_where_it_is_written(tmp_path: Path) -> None:
    text = ANSWERS.replace(
        "d,2026-02-01T10:00:00,nps,7,Paris", "d,2026-02-01T10:00:00,nps,7,(none)"
    )
    path = _file(tmp_path, "answers.csv", text)
    said = refused("nps", "--surveys", path, "--segment-col", "store")
    assert (f"{path}, line 7, column 'store': (none) is kept for the customers with no "
            "segment; rename that segment") in said  # fmt: skip
    subs = _file(tmp_path, "subs.csv", SUBSCRIPTIONS.replace(",north", ",(none)"))
    said = refused("mrr", "--subscriptions", subs, "--segment-col", "region")
    assert f"{subs}, line 2, column 'region': (none) is kept" in said


def test_a_bad_segments_file_is_named(answers: Path, tmp_path: Path) -> None:
    segs = _file(tmp_path, "segs.csv", "customer_id,segment\na,x\nb,y\na,z\n")
    said = refused("nps", "--surveys", answers, "--segments", segs)
    assert f"{segs}, line 4, column 'segment': customer 'a' is in segment 'x' (line 2)" in said
    said = refused("nps", "--surveys", answers, "--segments", tmp_path / "nope.csv")
    assert "the segments file given to --segments" in said and "was not found" in said


@pytest.mark.slow
def test_survey_and_mrr_segments_are_identical_on_duckdb_and_spark(
    answers: Path, subscriptions: Path
) -> None:
    for args in (("nps", "--surveys", answers, "--segment-col", "store", "--period", "month"),
                 ("mrr", "--subscriptions", subscriptions, "--segment-col", "region")):  # fmt: skip
        duck = run_json(*args, "--engine", "duckdb")
        spark = run_json(*args, "--engine", "spark")
        assert duck["rows"] == spark["rows"]
        assert duck["rows"]


def test_segments_list_the_periods_of_the_whole_files_result(tmp_path: Path) -> None:
    """A csat answer in April extends the file, not the NPS: NPS per segment lists the
    months the whole file's NPS lists (January, February), row for row."""
    path = _file(tmp_path, "answers.csv", ANSWERS + "b,2026-04-10T10:00:00,csat,5,Lyon\n")
    whole = run_json("nps", "--surveys", path, "--period", "month")["rows"]
    assert [r["period"] for r in whole] == ["2026-01", "2026-02"]
    rows = run_json("nps", "--surveys", path, "--period", "month", "--segment-col", "store")["rows"]
    assert [(r["segment"], r["period"], r["answers"]) for r in rows] == [
        ("Lyon", "2026-01", 1),
        ("Lyon", "2026-02", 2),
        ("Paris", "2026-01", 1),
        ("Paris", "2026-02", 2),
        ("(none)", "2026-01", 2),
        ("(none)", "2026-02", 0),
    ]
    for period in ("2026-01", "2026-02"):  # the segments add up to the whole file's
        total = sum(r["answers"] for r in rows if r["period"] == period)
        assert total == next(r["answers"] for r in whole if r["period"] == period)
    csat = run_json("csat", "--surveys", path, "--period", "month", "--segment-col", "store")
    assert sorted({r["period"] for r in csat["rows"]}) == [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
