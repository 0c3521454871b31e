"""Benchmark comparison of a metric's output against a reference value."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fidelite.analytics.benchmark import compare, compare_previous
from fidelite.analytics.errors import InputError
from tests.cli.support import fidelite

RESULT = {
    "metric": "retention",
    "definition": "Customer retention rate = ...",
    "parameters": {"period": "month"},
    "rows": [
        {"period": "2024-02", "retention_rate": 90.0},
        {"period": "2024-03", "retention_rate": 80.5},
        {"period": "2024-04", "retention_rate": None},
        {"period": "2024-05", "retention_rate": 85.0},
    ],
}


def test_compare_adds_difference_and_relative_difference() -> None:
    out = compare(RESULT, "retention_rate", 85.0, "industry norm")
    assert [(r["difference"], r["relative_difference"], r["versus"]) for r in out["rows"]] == [
        (5.0, 5.8824, "above"),
        (-4.5, -5.2941, "below"),
        (None, None, None),
        (0.0, 0.0, "equal"),
    ]
    assert out["parameters"]["benchmark"] == {
        "column": "retention_rate",
        "reference": 85.0,
        "label": "industry norm",
        "compared_in": "rows",
    }
    assert "retention_rate" in out["definition"] and RESULT["rows"][0].get("benchmark") is None


def test_compare_names_the_missing_column() -> None:
    with pytest.raises(InputError) as err:
        compare(RESULT, "churn", 10.0)
    assert err.value.reason == (
        "no column 'churn' in the rows or the summary (numeric columns in the rows: "
        "retention_rate; numeric fields in the summary: none)"
    )
    assert (err.value.file, err.value.column) == ("<metric result>", "churn")


def test_benchmark_cli_reads_a_metric_from_stdin(write_csv: Callable[..., Path]) -> None:
    tx = write_csv(
        "customer_id,timestamp,amount\na,2024-01-05,10\nb,2024-01-06,10\na,2024-02-05,10\n"
    )
    metric = fidelite("metrics", "retention", "-i", tx, "-f", "json")
    compared = fidelite(
        "metrics", "benchmark", "--column", "retention_rate", "--reference", "60", "-f", "json",
        input=metric.stdout,
    )  # fmt: skip
    feb = json.loads(compared.stdout)["rows"][1]
    assert (feb["retention_rate"], feb["difference"], feb["versus"]) == (50.0, -10.0, "below")
    bad = fidelite(
        "metrics", "benchmark", "--column", "x", "--reference", "1", "-f", "json",
        input="not json", ok=False,
    )  # fmt: skip
    assert bad.returncode == 1 and json.loads(bad.stdout)["error"]["code"] == "bad_input"


# c gives 80 of 100: the top 20 % (1 of 5 customers, ceil(0.2 x 5)) hold 80 %.
PARETO = """
customer_id,timestamp,amount
a,2024-01-01,5
b,2024-01-02,5
c,2024-01-03,80
d,2024-01-04,5
e,2024-01-05,5
"""


def _benchmark(metric: str, *args: str) -> subprocess.CompletedProcess[str]:
    return fidelite("metrics", "benchmark", *args, "-f", "json", input=metric, ok=False)


def test_benchmark_compares_a_summary_figure(write_csv: Callable[..., Path]) -> None:
    pareto = fidelite("metrics", "pareto", "-i", write_csv(PARETO), "-f", "json")
    proc = _benchmark(pareto.stdout, "--column", "top_revenue_share", "--reference", "75")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    summary = out["summary"]
    assert summary["top_revenue_share"] == 80.0
    # 80 - 75 = 5 points above, 5 / 75 x 100 = 6.6667 %
    assert (summary["benchmark"], summary["difference"], summary["relative_difference"]) == (
        75.0,
        5.0,
        6.6667,
    )
    assert summary["versus"] == "above"
    assert out["parameters"]["benchmark"]["compared_in"] == "summary"
    assert all("benchmark" not in r for r in out["rows"])


def test_benchmark_type_error_names_the_input_the_column_and_the_choices(
    write_csv: Callable[..., Path],
) -> None:
    tx = write_csv(PARETO)
    retention = fidelite("metrics", "retention", "-i", tx, "-f", "json")
    proc = _benchmark(retention.stdout, "--column", "period", "--reference", "80")
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert (error["file"], error["row"], error["column"]) == ("<stdin>", 1, "period")
    assert error["message"] == (
        "<stdin>, row 1, column 'period': '2024-01' is not a number (numeric columns in "
        "the rows: churn_rate, customers_end, customers_start, first_time, lost, new, "
        "reactivated, retained, retention_rate; numeric fields in the summary: none)"
    )
    saved = tmp = tx.with_name("retention.json")
    tmp.write_text(retention.stdout, encoding="utf-8")
    proc = _benchmark("", "--column", "nope", "--reference", "1", "--result", str(saved))
    error = json.loads(proc.stdout)["error"]
    assert (error["file"], error["column"]) == (str(saved), "nope")
    assert error["message"].startswith(f"{saved}, column 'nope': no column 'nope' in the rows")


def test_compare_summary_value_that_is_not_a_number() -> None:
    result = {**RESULT, "rows": [], "summary": {"note": "undefined"}}
    with pytest.raises(InputError) as err:
        compare(result, "note", 1.0, source="x.json")
    assert str(err.value) == (
        "x.json, column 'note': 'undefined' in the summary is not a number (numeric columns "
        "in the rows: none; numeric fields in the summary: none)"
    )


def test_compare_previous_compares_each_period_with_the_one_before() -> None:
    out = compare_previous(RESULT, "retention_rate")
    assert [
        (r["benchmark_period"], r["benchmark"], r["difference"], r["relative_difference"],
         r["versus"])
        for r in out["rows"]
    ] == [
        (None, None, None, None, None),  # the first period has no previous one
        ("2024-02", 90.0, -9.5, -10.5556, "below"),
        ("2024-03", 80.5, None, None, None),  # undefined this period
        ("2024-04", None, None, None, None),  # undefined the period before
    ]  # fmt: skip
    assert out["parameters"]["benchmark"] == {
        "column": "retention_rate",
        "reference": "previous period",
        "compared_in": "rows",
    }
    assert "previous period" in out["definition"]
    assert RESULT["rows"][1] == {"period": "2024-03", "retention_rate": 80.5}  # not changed


def test_compare_previous_keeps_each_segment_apart() -> None:
    result = {
        "metric": "repeat-rate",
        "parameters": {},
        "rows": [
            {"segment": "store", "period": "2024-01", "repeat_purchase_rate": 10.0},
            {"segment": "store", "period": "2024-02", "repeat_purchase_rate": 12.0},
            {"segment": "web", "period": "2024-01", "repeat_purchase_rate": 30.0},
            {"segment": "web", "period": "2024-02", "repeat_purchase_rate": 24.0},
        ],
    }
    out = compare_previous(result, "repeat_purchase_rate")
    assert [(r["benchmark_period"], r["difference"], r["relative_difference"])
            for r in out["rows"]] == [
        (None, None, None), ("2024-01", 2.0, 20.0), (None, None, None), ("2024-01", -6.0, -20.0)
    ]  # fmt: skip


def test_compare_previous_needs_periods_and_the_column() -> None:
    whole = {"metric": "repeat-rate", "parameters": {}, "rows": [{"repeat_purchase_rate": 1.0}]}
    with pytest.raises(InputError, match="run the metric with --period") as exc:
        compare_previous(whole, "repeat_purchase_rate", source="r.json")
    assert (exc.value.file, exc.value.column) == ("r.json", "period")
    with pytest.raises(InputError, match=r"no column 'retention'.*retention_rate"):
        compare_previous(RESULT, "retention")
    text = {**RESULT, "rows": [{"period": "2024-01", "retention_rate": 1},
                               {"period": "2024-02", "retention_rate": "90"}]}  # fmt: skip
    with pytest.raises(InputError, match="row 2, column 'retention_rate': '90' is not") as bad:
        compare_previous(text, "retention_rate")
    assert (bad.value.row, bad.value.column) == (2, "retention_rate")


def test_benchmark_cli_against_the_previous_period_per_segment(
    write_csv: Callable[..., Path],
) -> None:
    # a (store) buys twice in January, once in February; b (web) the other way round
    tx = write_csv(
        "customer_id,timestamp,amount,channel\n"
        "a,2024-01-05,10,store\na,2024-01-20,10,store\nb,2024-01-06,10,web\n"
        "a,2024-02-05,10,store\nb,2024-02-06,10,web\nb,2024-02-07,10,web\n"
    )
    metric = fidelite(
        "metrics", "repeat-rate", "-i", tx, "--period", "month", "--segment-col", "channel",
        "-f", "json",
    )  # fmt: skip
    proc = _benchmark(metric.stdout, "--column", "repeat_purchase_rate", "--previous")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert [
        (r["segment"], r["period"], r["repeat_purchase_rate"], r["benchmark_period"],
         r["benchmark"], r["difference"], r["relative_difference"], r["versus"])
        for r in out["rows"]
    ] == [
        ("store", "2024-01", 100.0, None, None, None, None, None),
        ("store", "2024-02", 0.0, "2024-01", 100.0, -100.0, -100.0, "below"),
        ("web", "2024-01", 0.0, None, None, None, None, None),
        ("web", "2024-02", 100.0, "2024-01", 0.0, 100.0, None, "above"),  # none relative to 0
    ]  # fmt: skip
    assert out["parameters"]["benchmark"]["reference"] == "previous period"


def test_benchmark_cli_needs_one_reference(write_csv: Callable[..., Path]) -> None:
    metric = fidelite("metrics", "pareto", "-i", write_csv(PARETO), "-f", "json").stdout
    for args in ([], ["--reference", "75", "--previous"]):
        proc = _benchmark(metric, "--column", "top_revenue_share", *args)
        assert proc.returncode == 2 and proc.stdout.startswith("{")  # a usage error
        error = json.loads(proc.stdout)["error"]
        assert (error["code"], error["message"]) == (
            "usage",
            "give --reference VALUE or --previous (one of them)",
        )
    whole = _benchmark(metric, "--column", "top_revenue_share", "--previous")
    assert whole.returncode == 1
    assert json.loads(whole.stdout)["error"]["column"] == "period"


def test_a_row_that_is_not_an_object_is_named() -> None:
    """It raised AttributeError (a traceback) in both comparisons."""
    broken = {"metric": "retention", "parameters": {}, "rows": [{"period": "2024-01"}, 1]}
    for call in (
        lambda: compare(broken, "retention_rate", 85.0, source="r.json"),
        lambda: compare_previous(broken, "retention_rate", source="r.json"),
    ):
        with pytest.raises(InputError) as caught:
            call()
        assert str(caught.value) == "r.json, row 2: not an object of named values: 1"
        assert (caught.value.file, caught.value.row) == ("r.json", 2)


def test_benchmark_cli_refuses_a_label_with_previous(write_csv: Callable[..., Path]) -> None:
    """--label was accepted with --previous and silently dropped."""
    metric = fidelite("metrics", "pareto", "-i", write_csv(PARETO), "-f", "json").stdout
    proc = _benchmark(metric, "--column", "top_revenue_share", "--previous", "--label", "norm")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["message"] == (
        "--label names a --reference value; with --previous the reference is the previous period"
    )
