"""Metrics per customer segment (``--segment-col``, ``--segments``), from small files
computed by hand.

The file below, by month (refunds never make a customer active)::

    a  web first (Jan 5), then store in Feb and Mar         -> web
    b  store, Jan and Mar                                   -> store
    c  first purchase with an empty channel (Feb 1), later web -> (none)
    d  one refund only (web)                                -> (none)
    e  two purchases at the same time, web and store        -> store (first in byte order)
    f  a store refund on Jan 2, then purchases on the web   -> web (refunds do not count)

Active per month: Jan a b f; Feb a c f; Mar a b e.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import fidelite

TX = """\
customer_id,timestamp,amount,channel
a,2024-01-05T10:00:00,10,web
a,2024-02-05T10:00:00,10,store
a,2024-03-05T10:00:00,10,store
b,2024-01-10T10:00:00,20,store
b,2024-03-10T10:00:00,20,store
c,2024-02-01T10:00:00,5,
c,2024-02-15T10:00:00,5,web
d,2024-01-20T10:00:00,-5,web
e,2024-03-01T10:00:00,7,web
e,2024-03-01T10:00:00,8,store
f,2024-01-02T09:00:00,-3,store
f,2024-01-03T09:00:00,12,web
f,2024-02-03T09:00:00,12,web
"""

SEGMENT_OF = {"a": "web", "b": "store", "c": "(none)", "d": "(none)", "e": "store", "f": "web"}
COUNTS = ("customers_start", "new", "first_time", "reactivated", "customers_end", "retained",
          "lost")  # fmt: skip


@pytest.fixture
def tx(tmp_path: Path) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text(TX, encoding="utf-8")
    return path


def run_json(*args: str | Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(fidelite("metrics", *args, "-f", "json").stdout)
    return out


def refused(*args: str | Path, code: int = 1) -> str:
    """Run a command that must fail with ``code`` and print nothing on stdout; its stderr."""
    proc = fidelite("metrics", *args, ok=False)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stdout == ""
    return " ".join(proc.stderr.split())


def test_retention_per_channel_adds_up_to_the_whole_file(tx: Path) -> None:
    whole = run_json("retention", "-i", tx)
    split = run_json("retention", "-i", tx, "--segment-col", "channel")
    assert split["parameters"]["segment_by"] == "channel"
    assert "value of column 'channel' on their first purchase" in split["definition"]
    assert [r["segment"] for r in split["rows"]] == ["store"] * 3 + ["web"] * 3 + ["(none)"] * 3
    web = [{k: r[k] for k in ("period", *COUNTS, "retention_rate")}
           for r in split["rows"] if r["segment"] == "web"]  # fmt: skip
    assert web == [
        {"period": "2024-01", "customers_start": 0, "new": 2, "first_time": 2, "reactivated": 0,
         "customers_end": 2, "retained": 0, "lost": 0, "retention_rate": None},
        {"period": "2024-02", "customers_start": 2, "new": 0, "first_time": 0, "reactivated": 0,
         "customers_end": 2, "retained": 2, "lost": 0, "retention_rate": 100.0},
        {"period": "2024-03", "customers_start": 2, "new": 0, "first_time": 0, "reactivated": 0,
         "customers_end": 1, "retained": 1, "lost": 1, "retention_rate": 50.0},
    ]  # fmt: skip
    store = [(r["customers_start"], r["customers_end"], r["new"], r["lost"])
             for r in split["rows"] if r["segment"] == "store"]  # fmt: skip
    assert store == [(0, 1, 1, 0), (1, 0, 0, 1), (0, 2, 2, 0)]
    # A period with nobody of the segment is listed: (none) has no customer in January,
    # and in March it loses c, who bought in February.
    none = [(r["period"], r["customers_start"], r["customers_end"], r["lost"])
            for r in split["rows"] if r["segment"] == "(none)"]  # fmt: skip
    assert none == [("2024-01", 0, 0, 0), ("2024-02", 0, 1, 0), ("2024-03", 1, 0, 1)]
    for row in whole["rows"]:
        parts = [r for r in split["rows"] if r["period"] == row["period"]]
        assert {k: sum(p[k] for p in parts) for k in COUNTS} == {k: row[k] for k in COUNTS}


def test_a_customer_stays_in_the_channel_of_their_first_purchase(tx: Path) -> None:
    result = run_json("rfm", "-i", tx, "--segment-col", "channel")
    members = {(r["segment"], r["customer_id"]) for r in result["rows"]}
    # a later bought in the store, c's first purchase has no channel, e's two first
    # purchases tie (store < web), f's earlier refund was in the store; d (a refund
    # only) has no RFM row.
    assert members == {("web", "a"), ("web", "f"), ("store", "b"), ("store", "e"),
                       ("(none)", "c")}  # fmt: skip
    # RFM's own segment is renamed beside the customer segment.
    assert {"segment", "rfm_segment"} <= set(result["rows"][0])


def test_new_vs_returning_and_repeat_rate_per_segment(tx: Path) -> None:
    nvr = run_json("new-vs-returning", "-i", tx, "--segment-col", "channel", "--period", "month")
    got = [(r["segment"], r["period"], r["customers"], r["new"]) for r in nvr["rows"]]
    assert got == [
        ("store", "2024-01", 1, 1), ("store", "2024-02", 0, 0), ("store", "2024-03", 2, 1),
        ("web", "2024-01", 2, 2), ("web", "2024-02", 2, 0), ("web", "2024-03", 1, 0),
        ("(none)", "2024-01", 0, 0), ("(none)", "2024-02", 1, 1), ("(none)", "2024-03", 0, 0),
    ]  # fmt: skip
    repeat = run_json("repeat-rate", "-i", tx, "--segment-col", "channel")
    got = [(r["segment"], r["customers"], r["repeat_customers"]) for r in repeat["rows"]]
    assert got == [("store", 2, 2), ("web", 2, 2), ("(none)", 1, 1)]


def test_an_rfm_csv_feeds_back_as_the_segments_file(tx: Path, tmp_path: Path) -> None:
    written = fidelite("metrics", "rfm", "-i", tx, "-f", "csv").stdout
    rfm_csv = tmp_path / "rfm.csv"
    rfm_csv.write_text(written, encoding="utf-8")
    segment_of = {r["customer_id"]: r["segment"] for r in csv.DictReader(io.StringIO(written))}
    assert set(segment_of) == {"a", "b", "c", "e", "f"}
    split = run_json("repeat-rate", "-i", tx, "--segments", rfm_csv)
    assert split["parameters"]["segment_by"] == str(rfm_csv)
    assert f"the one the segments file {rfm_csv} gives" in split["definition"]
    expected = {s: sum(1 for c in segment_of if segment_of[c] == s) for s in segment_of.values()}
    got = {r["segment"]: r["customers"] for r in split["rows"]}
    # d, a refund only, is in no RFM row: (none), with no customer who bought.
    assert got == {**expected, "(none)": 0}
    assert [r["segment"] for r in split["rows"]] == [*sorted(expected), "(none)"]
    whole = run_json("repeat-rate", "-i", tx)["rows"][0]
    assert sum(r["customers"] for r in split["rows"]) == whole["customers"] == 5
    assert sum(r["repeat_customers"] for r in split["rows"]) == whole["repeat_customers"]


def test_a_segment_keeps_the_whole_files_last_day(tmp_path: Path) -> None:
    """web's only customer stops on Jan 20; the file ends on Mar 31 (a store purchase).
    The January cohort's 30-day window (to Mar 1) is complete by the file's last day,
    and web's RFM recency counts to Mar 31, not to the segment's own last day."""
    path = tmp_path / "tx.csv"
    path.write_text(
        "customer_id,timestamp,amount,channel\n"
        "w,2024-01-10,10,web\nw,2024-01-20,10,web\n"
        "s,2024-01-05,10,store\ns,2024-03-31,10,store\n",
        encoding="utf-8",
    )
    rep = run_json("repurchase", "-i", path, "--days", "30,90", "--segment-col", "channel")
    assert rep["parameters"]["observation_end"] == "2024-03-31"
    web = next(r for r in rep["rows"] if r["segment"] == "web")
    assert (web["cohort"], web["customers"], web["repurchased_30d"]) == ("2024-01", 1, 1)
    assert (web["complete_30d"], web["complete_90d"]) == (True, False)
    rfm = run_json("rfm", "-i", path, "--segment-col", "channel")
    assert {r["customer_id"]: r["recency"] for r in rfm["rows"]} == {"w": 71, "s": 0}
    cohorts = run_json("cohorts", "-i", path, "--segment-col", "channel")
    web_row = next(r for r in cohorts["rows"] if r["segment"] == "web")
    assert (web_row["month_0"], web_row["month_1"], web_row["month_2"]) == (100.0, 0.0, 0.0)
    clv = run_json("clv", "-i", path, "--segment-col", "channel", "--lifespan-years", "1")
    assert clv["parameters"]["observation_start"] == "2024-01-05"
    assert clv["parameters"]["observation_end"] == "2024-03-31"
    assert {r["segment"]: r["observed_years"] for r in clv["rows"]} == {
        "store": round(87 / 365.25, 4), "web": round(87 / 365.25, 4)
    }  # fmt: skip


def test_every_transactions_metric_runs_per_segment(tx: Path, tmp_path: Path) -> None:
    """Each command taking the segment options, on a file with a refund-only segment;
    csv and table formats too. A summary becomes one per segment."""
    targeting = tmp_path / "groups.csv"
    targeting.write_text(
        "customer_id,campaign,group\na,spring,treatment\nb,spring,holdout\nz,spring,treatment\n",
        encoding="utf-8",
    )
    header, *lines = TX.splitlines()
    coded = _csv(tmp_path, "coded.csv", "\n".join(
        [f"{header},coupon_code,product_id", *(f"{line},,p{i % 3}" for i, line in enumerate(lines))]
    ))  # fmt: skip
    seg = ("--segment-col", "channel")
    pareto = run_json("pareto", "-i", tx, *seg)
    assert set(pareto["summary"]) == {"store", "web", "(none)"}
    assert pareto["summary"]["(none)"]["refund_only_customers"] == 1
    # Each segment's figures are the metric's on a file of that segment's rows only,
    # but for the figures that depend on the whole file's days (a period with nobody,
    # the observation end): those are compared where the segment's own file has them.
    coded_lines = coded.read_text(encoding="utf-8").splitlines()
    own = {
        value: _csv(tmp_path, f"own{i}.csv", "\n".join(
            [coded_lines[0], *(ln for ln in coded_lines[1:] if SEGMENT_OF[ln[0]] == value)]
        ))
        for i, value in enumerate(("store", "web", "(none)"))
    }  # fmt: skip
    same = {  # per metric: the key of a row, and the fields compared
        "churn": (("period",), ("start", "end", *COUNTS, "retention_rate", "churn_rate")),
        "cohorts": (("cohort",), ("cohort_start", "size", "days_1_7")),
        "clv": ((), ("average_order_value", "customers", "orders")),
        "loyalty-kinds": (("customer_id",), ("orders", "coupon_share")),
        "multi-product": ((), ("customers", "repeat_customers", "multi_product_customers",
                               "multi_product_rate")),
        "basket": (("a", "b"), ("baskets_with_both", "baskets_with_a", "baskets_with_b",
                                "support", "confidence_a_to_b", "confidence_b_to_a", "lift")),
    }  # fmt: skip
    for args in (("churn",), ("cohorts", "--kind", "bracket"), ("clv",), ("loyalty-kinds",),
                 ("multi-product",), ("basket", "--min-support", "0")):  # fmt: skip
        result = run_json(*args, "-i", coded, *seg)
        assert result["parameters"]["segment_by"] == "channel"
        assert all(next(iter(r)) == "segment" for r in result["rows"])
        key, fields = same[args[0]]
        for value, path in own.items():
            by_hand = run_json(*args, "-i", path)
            alone = {tuple(r[k] for k in key): r for r in by_hand["rows"]}
            split = {tuple(r[k] for k in key): r for r in result["rows"] if r["segment"] == value}
            assert set(alone) <= set(split), (args, value)
            for k, row in alone.items():
                assert {f: split[k][f] for f in fields} == {f: row[f] for f in fields}, (args, k)
            if args[0] == "basket":  # one pair in all: the segment's baskets are its figure
                assert result["parameters"]["baskets"][value] == by_hand["parameters"]["baskets"]
            else:
                assert alone, (args, value)  # at least one row of each segment compared
    coupons = run_json("coupons", "-i", coded, *seg, "--targeting", targeting,
                       "--from", "2024-01-01", "--to", "2024-03-31")  # fmt: skip
    got = [(r["segment"], r["group"], r["customers"]) for r in coupons["rows"]]
    # z, targeted but absent from the transactions, is in (none).
    assert got == [("store", "holdout", 1), ("web", "treatment", 1), ("(none)", "treatment", 1)]
    out = fidelite("metrics", "repeat-rate", "-i", tx, *seg, "-f", "csv").stdout
    assert out.splitlines() == [
        "segment,customers,repeat_customers,repeat_purchase_rate",
        "store,2,2,100.0", "web,2,2,100.0", "(none),1,1,100.0",
    ]  # fmt: skip
    table = fidelite("metrics", "repeat-rate", "-i", tx, *seg).stdout
    assert "segment" in table and "(none)" in table and "first purchase" in table


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_both_segment_options_are_a_usage_error(tx: Path, tmp_path: Path) -> None:
    segs = _csv(tmp_path, "s.csv", "customer_id,segment\na,x\n")
    said = refused("retention", "-i", tx, "--segment-col", "channel", "--segments", segs, code=2)
    assert "not both" in said
    said = refused("retention", "-i", tx, "--segments", segs, "--segment-col", "channel", code=2)
    assert "not both" in said
    proc = fidelite("metrics", "retention", "-i", tx, "--segment-col", "channel",
                    "--segments", segs, "-f", "json", ok=False)  # fmt: skip
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == "usage"


def test_an_unknown_segment_column_is_named(tx: Path) -> None:
    said = refused("retention", "-i", tx, "--segment-col", "region")
    assert f"{tx}, column 'region': no column 'region' to segment by" in said


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("customer_id,group\na,x\n", "column 'segment'", "missing required column 'segment'"),
        ("id,segment\na,x\n", "column 'customer_id'", "missing required column 'customer_id'"),
        ("customer_id,segment\na,x\nb,y\na,z\n", "line 4, column 'segment'",
         "customer 'a' is in segment 'x' (line 2) and in 'z' here"),
        ("customer_id,segment\na,x\nb,\n", "line 3, column 'segment'", "missing segment"),
        (" customer_id,segment\n,x\n", "line 2, column 'customer_id'", "missing customer_id"),
        ("customer_id,segment\n", "", "no segments (the file has a header but no rows)"),
        ("", "", "the file is empty"),
    ],
)  # fmt: skip
def test_a_bad_segments_file_is_named(
    tx: Path, tmp_path: Path, text: str, where: str, reason: str
) -> None:
    segs = _csv(tmp_path, "segs.csv", text.replace(" customer_id", "customer_id"))
    said = refused("retention", "-i", tx, "--segments", segs)
    assert f"{segs}{', ' + where if where else ''}: {reason}" in said


def test_a_customer_listed_twice_in_one_segment_is_accepted(tx: Path, tmp_path: Path) -> None:
    segs = _csv(tmp_path, "segs.csv", "customer_id,segment\na,x\na,x\nb,y\n")
    rows = run_json("repeat-rate", "-i", tx, "--segments", segs)["rows"]
    assert [(r["segment"], r["customers"]) for r in rows] == [("x", 1), ("y", 1), ("(none)", 3)]


def test_a_missing_segments_file_is_named(tx: Path, tmp_path: Path) -> None:
    nope = tmp_path / "nope.csv"
    said = refused("retention", "-i", tx, "--segments", nope)
    assert f"{nope}: the segments file given to --segments, '{nope}', was not found" in said
    # An empty --segments is the current directory: said so, naming the option.
    said = refused("retention", "-i", tx, "--segments", "")
    assert ".: the segments file given to --segments, '.', is a directory, not a file" in said
    said = refused("retention", "-i", tx, "--segments", tmp_path)
    assert f"--segments, '{tmp_path}', is a directory" in said


def test_a_segment_value_none_is_refused(tx: Path, tmp_path: Path) -> None:
    """'(none)' labels the customers with no segment: a real segment of that name would
    merge with them. Refused where it is written, in the column and in a segments file."""
    path = _csv(tmp_path, "tx.csv", TX.replace("f,2024-01-03T09:00:00,12,web",
                                               "f,2024-01-03T09:00:00,12, (none) "))  # fmt: skip
    said = refused("retention", "-i", path, "--segment-col", "channel")
    assert (f"{path}, line 13, column 'channel': (none) is kept for the customers with no "
            "segment; rename that segment: ' (none) '") in said  # fmt: skip
    segs = _csv(tmp_path, "segs.csv", "customer_id,segment\na,gold\nb,(none)\n")
    said = refused("repeat-rate", "-i", tx, "--segments", segs)
    assert f"{segs}, line 3, column 'segment': (none) is kept for the customers" in said
    # Another spelling is a segment like any other.
    segs.write_text("customer_id,segment\na,gold\nb,(None)\n", encoding="utf-8")
    rows = run_json("repeat-rate", "-i", tx, "--segments", segs)["rows"]
    assert [(r["segment"], r["customers"]) for r in rows] == [
        ("(None)", 1), ("gold", 1), ("(none)", 3)
    ]  # fmt: skip


def test_only_a_metric_that_ranks_says_it_ranks_within_a_segment(tx: Path) -> None:
    seg = ("--segment-col", "channel")
    for metric in ("retention", "repeat-rate", "clv", "cohorts"):
        assert "rank" not in run_json(metric, "-i", tx, *seg)["definition"], metric
    assert (
        "(RFM scores rank a customer among their segment's customers)"
        in run_json("rfm", "-i", tx, *seg)["definition"]
    )
    assert (
        "(the top customers are the top of their segment)"
        in run_json("pareto", "-i", tx, *seg)["definition"]
    )


def test_a_tie_on_the_first_purchase_goes_to_the_first_value_in_byte_order(
    tmp_path: Path,
) -> None:
    """Upper case sorts before lower case: 'Web' before 'store', as the rule says."""
    path = _csv(tmp_path, "tx.csv", "customer_id,timestamp,amount,channel\n"
                "a,2024-01-05,10,store\na,2024-01-05,10,Web\nb,2024-01-06,10,store\n")  # fmt: skip
    result = run_json("repeat-rate", "-i", path, "--segment-col", "channel")
    assert [(r["segment"], r["customers"]) for r in result["rows"]] == [("Web", 1), ("store", 1)]
    assert ("at equal times the first non-empty value in byte order, upper case before "
            "lower case") in result["definition"]  # fmt: skip


@pytest.mark.parametrize("by", ["file", "column"])
def test_per_segment_coupons_count_every_targeted_customer_once(tmp_path: Path, by: str) -> None:
    """z, targeted and in the treatment group, never bought: with a segments file its
    segment (vip) has no buyer, with a column it is in (none), which no buyer is in.
    It is counted in that segment, so the segments add up to the whole file."""
    tx = _csv(tmp_path, "tx.csv", "customer_id,timestamp,amount,coupon_code,channel\n"
              "a,2024-01-05,10,,web\nb,2024-01-06,10,C1,web\nb,2024-02-06,10,,web\n")  # fmt: skip
    groups = _csv(tmp_path, "groups.csv", "customer_id,campaign,group\n"
                  "a,spring,treatment\nb,spring,holdout\nz,spring,treatment\n")  # fmt: skip
    segs = _csv(tmp_path, "segs.csv", "customer_id,segment\na,gold\nb,gold\nz,vip\n")
    window = ("--targeting", groups, "--from", "2024-01-01", "--to", "2024-03-31")
    whole = run_json("coupons", "-i", tx, *window)["rows"]
    option = ("--segments", segs) if by == "file" else ("--segment-col", "channel")
    split = run_json("coupons", "-i", tx, *window, *option)["rows"]
    lone = "vip" if by == "file" else "(none)"
    known = "gold" if by == "file" else "web"
    got = [(r["segment"], r["group"], r["customers"], r["buyers"], r["revenue"]) for r in split]
    assert got == [(known, "treatment", 1, 1, 10.0), (known, "holdout", 1, 1, 20.0),
                   (lone, "treatment", 1, 0, 0.0)]  # fmt: skip
    assert [(r["group"], r["customers"]) for r in whole] == [("treatment", 2), ("holdout", 1)]
    for row in whole:
        parts = [r for r in split if r["group"] == row["group"]]
        assert sum(p["customers"] for p in parts) == row["customers"]
        assert sum(p["buyers"] for p in parts) == row["buyers"]
        assert sum(p["revenue"] for p in parts) == row["revenue"]


def test_more_than_100_segments_are_refused(tmp_path: Path) -> None:
    lines = [f"c{i},2024-01-01,1,r{i}" for i in range(101)]
    path = _csv(tmp_path, "tx.csv", "customer_id,timestamp,amount,region\n" + "\n".join(lines))
    said = refused("retention", "-i", path, "--segment-col", "region")
    assert f"{path}, column 'region': 101 distinct segments in column 'region'" in said
    assert "coarser column" in said
    ok = "\n".join(lines[:99])  # 99 regions and (none) for the refund-only customer
    path.write_text(f"customer_id,timestamp,amount,region\n{ok}\nz,2024-01-02,-1,r0\n")
    rows = run_json("repeat-rate", "-i", path, "--segment-col", "region")["rows"]
    assert len(rows) == 100 and rows[-1]["segment"] == "(none)"


def test_commands_that_cannot_be_split_do_not_offer_segments(tx: Path) -> None:
    proc = fidelite("metrics", "program-kpis", "--db", "x.db", "--segment-col", "channel",
                    ok=False)  # fmt: skip
    assert proc.returncode == 2 and "No such option" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [("retention",), ("repurchase", "--days", "30"), ("rfm",), ("cohorts",), ("clv",)],
)
def test_segments_are_identical_on_duckdb_and_spark(tx: Path, args: tuple[str, ...]) -> None:
    def rows(engine: str) -> Any:
        return run_json(*args, "-i", tx, "--segment-col", "channel", "--engine", engine)["rows"]

    assert rows("spark") == rows("duckdb")


def test_the_report_gives_a_table_per_segment(tx: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    fidelite("report", tx, "--out", out, "--segment-col", "channel", "-f", "json")
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    keys = ("segment", "customers", "repeat_purchase_rate", "customers_start", "retained",
            "pooled_retention_rate")  # fmt: skip
    summary = [tuple(r[k] for k in keys) for r in data["segments"]["summary"]]
    # web: Feb 2 at the start, 2 retained; Mar 2, 1 retained. store: Feb 1, 0; Mar 0.
    # (none): Mar 1 (c), 0.
    assert summary == [
        ("store", 2, 100.0, 1, 0, 0.0),
        ("web", 2, 100.0, 4, 3, 75.0),
        ("(none)", 1, 100.0, 1, 0, 0.0),
    ]
    assert data["segments"]["segment_by"] == "channel"
    assert data["segments"]["retention"]["rows"][0]["segment"] == "store"
    assert data["metrics"]["retention"]["rows"][1]["customers_start"] == 3  # the whole file's
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Segments by channel" in html and "<th>(none)</th>" in html
    plain = tmp_path / "plain"
    fidelite("report", tx, "--out", plain, "-f", "json")
    data = json.loads((plain / "report.json").read_text(encoding="utf-8"))
    assert "segments" not in data
    assert "Segments by" not in (plain / "report.html").read_text(encoding="utf-8")


def test_a_count_differing_between_segments_is_stated_per_segment(tmp_path: Path) -> None:
    """basket's parameters.baskets counts the data: one figure per segment, adding up
    to the file's; the options stay single values."""
    path = _csv(
        tmp_path,
        "tx.csv",
        "customer_id,timestamp,amount,channel,product_id,order_id\n"
        "a,2024-01-05,10,web,p1,o1\na,2024-01-05,10,web,p2,o1\na,2024-02-05,10,store,p1,o2\n"
        "b,2024-01-10,20,store,p1,o3\nc,2024-02-01,5,,p2,o5\n",
    )
    whole = run_json("basket", "-i", path, "--min-support", "0")
    split = run_json("basket", "-i", path, "--min-support", "0", "--segment-col", "channel")
    assert whole["parameters"]["baskets"] == 4
    assert split["parameters"]["baskets"] == {"store": 1, "web": 2, "(none)": 1}
    assert split["parameters"]["min_support"] == 0.0
    assert [(r["segment"], r["a"], r["b"]) for r in split["rows"]] == [("web", "p1", "p2")]


def test_a_bad_segments_file_is_named_in_json_too(tx: Path, tmp_path: Path) -> None:
    segs = _csv(tmp_path, "segs.csv", "customer_id,segment,recency\na,x,1\na,y,2\n")
    proc = fidelite("metrics", "cohorts", "-i", tx, "--segments", segs, "-f", "json", ok=False)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert (error["code"], error["file"], error["row"], error["column"]) == (
        "bad_input", str(segs), 3, "segment"
    )  # fmt: skip


def test_segments_with_fewer_cohort_columns_keep_every_column_in_csv(tmp_path: Path) -> None:
    """alpha's customers start in March, beta's in January: alpha's matrix has one age,
    beta's three, and the CSV (whose header the first row gives) keeps all three."""
    path = _csv(
        tmp_path,
        "tx.csv",
        "customer_id,timestamp,amount,tier\n"
        "a,2024-03-02,10,alpha\nb,2024-01-03,10,beta\nb,2024-03-03,10,beta\n",
    )
    out = fidelite("metrics", "cohorts", "-i", path, "--segment-col", "tier", "-f", "csv")
    assert out.stdout.splitlines() == [
        "segment,cohort,cohort_start,size,month_0,month_1,month_2",
        "alpha,2024-03,2024-03-01,1,100.0,,",
        "beta,2024-01,2024-01-01,1,100.0,0.0,100.0",
    ]


def test_a_segments_file_of_more_than_100_segments_is_refused(tx: Path, tmp_path: Path) -> None:
    rows = "".join(f"{c},s{c}\n" for c in "abcdef")
    rows += "".join(f"x{i},t{i}\n" for i in range(200))  # segments of no buyer: not counted
    segs = _csv(tmp_path, "segs.csv", "customer_id,segment\n" + rows)
    assert len(run_json("repeat-rate", "-i", tx, "--segments", segs)["rows"]) == 6
    many = [f"c{i},2024-01-01,1" for i in range(101)]
    path = _csv(tmp_path, "many.csv", "customer_id,timestamp,amount\n" + "\n".join(many))
    segs.write_text("customer_id,segment\n" + "".join(f"c{i},s{i}\n" for i in range(101)))
    said = refused("retention", "-i", path, "--segments", segs)
    assert f"{segs}, column 'segment': 101 distinct segments in the segments file" in said
    assert "fewer segments" in said
