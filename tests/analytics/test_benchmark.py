"""Benchmark comparison of a metric's output against a reference value."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fidelite.analytics.benchmark import compare
from fidelite.analytics.errors import InputError

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
    }
    assert "retention_rate" in out["definition"] and RESULT["rows"][0].get("benchmark") is None


def test_compare_names_the_missing_column() -> None:
    with pytest.raises(InputError) as err:
        compare(RESULT, "churn", 10.0)
    assert err.value.reason == "no column 'churn' in the rows (numeric columns: retention_rate)"


def test_benchmark_cli_reads_a_metric_from_stdin(write_csv: Callable[..., Path]) -> None:
    tx = write_csv(
        "customer_id,timestamp,amount\na,2024-01-05,10\nb,2024-01-06,10\na,2024-02-05,10\n"
    )
    fidelite = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")
    metric = subprocess.run(
        [fidelite, "metrics", "retention", "-i", str(tx), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    compared = subprocess.run(
        [
            fidelite,
            "metrics",
            "benchmark",
            "--column",
            "retention_rate",
            "--reference",
            "60",
            "-f",
            "json",
        ],
        input=metric.stdout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compared.returncode == 0, compared.stderr
    feb = json.loads(compared.stdout)["rows"][1]
    assert (feb["retention_rate"], feb["difference"], feb["versus"]) == (50.0, -10.0, "below")
    bad = subprocess.run(
        [fidelite, "metrics", "benchmark", "--column", "x", "--reference", "1", "-f", "json"],
        input="not json",
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and json.loads(bad.stdout)["error"]["code"] == "bad_input"
