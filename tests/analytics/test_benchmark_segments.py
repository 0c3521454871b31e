"""Benchmark of a per-segment summary, of a result without rows, and its error wording.

``metrics pareto --segment-col channel`` keeps one summary per segment
(``summary.web.top_revenue_share``): ``benchmark --column top_revenue_share`` said
"numeric fields in the summary: none" and ``web.top_revenue_share`` was refused too.
A misspelt column was accepted when the result had no rows, and a value that is not a
number was shown as Python spells it (``False``), not as the JSON input does.
"""

from __future__ import annotations

import pytest

from fidelite.analytics.benchmark import compare
from fidelite.analytics.errors import InputError


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
