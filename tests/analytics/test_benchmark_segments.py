"""Benchmark of a per-segment summary, of a result without rows, and its error wording.

``metrics pareto --segment-col channel`` keeps one summary per segment
(``summary.web.top_revenue_share``): ``benchmark --column top_revenue_share`` said
"numeric fields in the summary: none" and ``web.top_revenue_share`` was refused too.
A misspelt column was accepted when the result had no rows, and a value that is not a
number was shown as Python spells it (``False``), not as the JSON input does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fidelite.analytics.benchmark import compare
from fidelite.analytics.errors import InputError
from tests.cli.support import fidelite

# web: a 100 of 115 (top 1 of 3: 86.9565 %); store: d and e 50 each (top 1 of 2: 50 %).
TX = """
customer_id,timestamp,amount,channel
a,2024-01-01,100,web
b,2024-01-01,10,web
c,2024-01-01,5,web
d,2024-01-01,50,store
e,2024-01-01,50,store
"""
SHOWN = ("top_revenue_share", "benchmark", "difference", "relative_difference", "versus")


def _pareto_per_channel(write_csv: Callable[..., Path]) -> Path:
    out = fidelite("metrics", "pareto", "-i", write_csv(TX), "--segment-col", "channel",
                   "-f", "json")  # fmt: skip
    path = write_csv(out.stdout, "par.json")
    return path


def _benchmark(path: Path, column: str) -> dict[str, object]:
    proc = fidelite("metrics", "benchmark", "--column", column, "--reference", "80",
                    "--result", path, "-f", "json", ok=False)  # fmt: skip
    out: dict[str, object] = json.loads(proc.stdout)
    return out


def test_a_field_of_every_segments_summary_is_compared_in_each(
    write_csv: Callable[..., Path],
) -> None:
    out = _benchmark(_pareto_per_channel(write_csv), "top_revenue_share")
    summary = out["summary"]
    assert isinstance(summary, dict)
    assert {s: tuple(summary[s][k] for k in SHOWN) for s in summary} == {
        # 50 - 80 = -30 points, -30 / 80 x 100 = -37.5 %
        "store": (50.0, 80.0, -30.0, -37.5, "below"),
        # 86.9565 - 80 = 6.9565 points, 6.9565 / 80 x 100 = 8.6956 %
        "web": (86.9565, 80.0, 6.9565, 8.6956, "above"),
    }
    parameters = out["parameters"]
    assert isinstance(parameters, dict)
    assert parameters["benchmark"] == {
        "column": "top_revenue_share", "reference": 80.0, "label": "reference",
        "compared_in": "summary", "segments": ["store", "web"],
    }  # fmt: skip
    rows = out["rows"]
    assert isinstance(rows, list) and all("benchmark" not in r for r in rows)


def test_segment_dot_field_compares_that_segment_only(write_csv: Callable[..., Path]) -> None:
    out = _benchmark(_pareto_per_channel(write_csv), "web.top_revenue_share")
    summary = out["summary"]
    assert isinstance(summary, dict)
    assert tuple(summary["web"][k] for k in SHOWN) == (86.9565, 80.0, 6.9565, 8.6956, "above")
    assert "benchmark" not in summary["store"]
    parameters = out["parameters"]
    assert isinstance(parameters, dict)
    benchmark = parameters["benchmark"]
    assert isinstance(benchmark, dict)
    assert (benchmark["compared_in"], benchmark["segments"]) == ("summary", ["web"])


def test_a_field_in_no_segments_summary_is_one_error(write_csv: Callable[..., Path]) -> None:
    path = _pareto_per_channel(write_csv)
    before = path.read_text(encoding="utf-8")
    error = _benchmark(path, "web.top_revenue_shares")["error"]
    assert isinstance(error, dict)
    assert (error["file"], error["column"]) == (str(path), "web.top_revenue_shares")
    assert error["message"] == (
        f"{path}, column 'web.top_revenue_shares': no column 'web.top_revenue_shares' in the "
        "rows or the summary (numeric columns in the rows: cumulative_share, rank, revenue, "
        "revenue_share; numeric fields in each segment's summary (or SEGMENT.FIELD for one "
        "segment): customers, customers_without_revenue, excluded_revenue, ranked_customers, "
        "refund_only_customers, refund_only_revenue, revenue, top_customers, top_revenue, "
        "top_revenue_share)"
    )
    assert path.read_text(encoding="utf-8") == before


def test_a_misspelt_column_is_refused_when_there_are_no_rows() -> None:
    result = {"metric": "retention", "definition": "d", "parameters": {}, "rows": [],
              "summary": {"customers": 0}}  # fmt: skip
    with pytest.raises(InputError) as err:
        compare(result, "retention_rat", 80.0, source="r.json")
    assert str(err.value) == (
        "r.json, column 'retention_rat': no column 'retention_rat' in the summary (the result "
        "has no rows) (numeric columns in the rows: none; numeric fields in the summary: "
        "customers)"
    )
    assert result["rows"] == [] and result["summary"] == {"customers": 0}


def test_a_value_that_is_not_a_number_is_shown_as_json_spells_it() -> None:
    result = {"metric": "m", "definition": "d", "parameters": {},
              "rows": [{"period": "2024-01", "rate": False}], "summary": {"flag": None,
              "ok": True}}  # fmt: skip
    with pytest.raises(InputError) as err:
        compare(result, "rate", 1.0, source="x.json")
    assert str(err.value) == (
        "x.json, row 1, column 'rate': false is not a number (numeric columns in the rows: "
        "none; numeric fields in the summary: flag)"
    )
    with pytest.raises(InputError) as err:
        compare({**result, "rows": []}, "ok", 1.0, source="x.json")
    assert str(err.value) == (
        "x.json, column 'ok': true in the summary is not a number (numeric columns in the "
        "rows: none; numeric fields in the summary: flag)"
    )
