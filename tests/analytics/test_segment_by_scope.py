"""``parameters.segment_by`` is stated where rows are per segment, and only there: the
report's metrics are the whole file's even with ``--segment-col``. A segment's summary
in CSV output is one ``#`` line per figure, as without segments."""

from __future__ import annotations

import json
from pathlib import Path

from tests.analytics.test_segments import TX
from tests.cli.support import fidelite


def test_the_reports_whole_file_metrics_state_no_segment_by(tmp_path: Path) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text(TX, encoding="utf-8")
    out = tmp_path / "report"
    fidelite("report", tx, "--out", out, "--segment-col", "channel", "-f", "json")
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    stated = {name: "segment_by" in m["parameters"] for name, m in data["metrics"].items()}
    assert stated == dict.fromkeys(data["metrics"], False)
    assert {"repeat_rate", "retention", "repurchase", "cohorts", "pareto", "clv"} <= set(stated)
    assert data["metrics"]["repeat_rate"]["rows"] == [
        {"customers": 5, "repeat_customers": 5, "repeat_purchase_rate": 100.0}
    ]
    assert "segment_by" not in data["input"]
    # Per segment, it is said.
    assert data["segments"]["segment_by"] == "channel"
    for name in ("retention", "repeat_rate"):
        assert data["segments"][name]["parameters"]["segment_by"] == "channel"


def test_a_metric_per_segment_states_segment_by_once(tmp_path: Path) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text(TX, encoding="utf-8")
    split = json.loads(
        fidelite(
            "metrics", "repeat-rate", "-i", tx, "--segment-col", "channel", "-f", "json"
        ).stdout
    )
    assert split["parameters"]["segment_by"] == "channel"
    whole = json.loads(fidelite("metrics", "repeat-rate", "-i", tx, "-f", "json").stdout)
    assert "segment_by" not in whole["parameters"]


def test_csv_summary_lines_per_segment_are_one_per_figure(tmp_path: Path) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text(TX, encoding="utf-8")
    proc = fidelite("metrics", "pareto", "-i", tx, "--segment-col", "channel", "-f", "csv")
    shares = [line for line in proc.stderr.splitlines() if "top_revenue_share" in line]
    # store: b 40 of b 40 + e 15; web: a 30 of a 30 + f 21 (12 + 12 - 3); (none): c alone.
    assert shares == [
        "# summary.store.top_revenue_share: 72.7273",
        "# summary.web.top_revenue_share: 58.8235",
        "# summary.(none).top_revenue_share: 100.0",
    ]
    assert not [line for line in proc.stderr.splitlines() if line.endswith("}")
                and line.startswith("# summary.")]  # fmt: skip
    assert sum(line.startswith("# summary.web.") for line in proc.stderr.splitlines()) == 10
