"""`fidelite clv health`: hand-computed scores and contributions on small files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

# As of 2024-03-31 with a 30-day window: recent = (Mar 1, Mar 31], previous = (Jan 31, Mar 1].
TX = """customer_id,timestamp,amount,order_id
a,2024-01-10,10,o1
a,2024-03-20,20,o2
a,2024-03-25,30,o3
b,2024-01-05,50,o4
b,2024-02-01,50,o5
c,2024-03-31,5,o6
"""
ANSWERS = "customer_id,timestamp,question,score\na,2024-02-01,nps,9\na,2024-03-01,nps,7\n" \
          "b,2024-01-06,nps,2\n"  # fmt: skip
CASES = "customer_id,timestamp\nb,2024-03-01\nb,2024-03-02\nc,2023-06-01\n"


def _run(tmp_path: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    (tmp_path / "tx.csv").write_text(TX)
    (tmp_path / "answers.csv").write_text(ANSWERS)
    (tmp_path / "cases.csv").write_text(CASES)
    args = ["clv", "health", "-i", str(tmp_path / "tx.csv"), "--window-days", "30", "-f", "json"]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_health_scores_with_every_input(tmp_path: Path) -> None:
    out = _run(tmp_path, "--surveys", str(tmp_path / "answers.csv"),
               "--support-cases", str(tmp_path / "cases.csv"))  # fmt: skip
    assert out["as_of"] == "2024-03-31"
    a, b, c = out["rows"]
    # a: 6 days -> 0.5 ** (6/90) x 30 = 28.65; 2 orders now, 0 before -> 25; spend 15;
    # latest NPS 7 -> 0.7 x 20 = 14; no case -> 10.
    assert (a["recency_points"], a["frequency_trend_points"], a["spend_trend_points"],
            a["nps_points"], a["support_points"], a["health_score"]) == (
        28.65, 25.0, 15.0, 14.0, 10.0, 92.65)  # fmt: skip
    # b: 59 days -> 19.04; slowing to 0; NPS 2 -> 4; the case on Mar 2 is in the window
    # (Mar 1 is not) -> 1 / (1 + 1) x 10 = 5.
    assert (b["health_score"], b["support_cases"], b["nps_points"], b["support_points"]) == (
        28.04, 1, 4.0, 5.0)  # fmt: skip
    # c: no NPS answer: the other weights are rescaled to 0.8 (recency 0.3/0.8 -> 37.5).
    assert (c["nps_answer"], c["recency_points"], c["health_score"]) == (None, 37.5, 100.0)
    assert [r["churn_risk"] for r in out["rows"]] == ["medium", "high", "low"]


def test_health_without_optional_files_drops_those_components(tmp_path: Path) -> None:
    a = _run(tmp_path)["rows"][0]
    assert (a["nps_answer"], a["support_cases"], a["nps_points"], a["support_points"]) == (
        None, None, 0.0, 0.0)  # fmt: skip
    # recency, frequency and spend weights 0.3, 0.25, 0.15 rescaled over 0.7
    assert a["frequency_trend_points"] == round(100 * 0.25 / 0.7, 2)


def test_health_bad_survey_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    (tmp_path / "answers.csv").write_text(ANSWERS + "c,2024-03-01,nps,eleven\n")
    args = ["clv", "health", "-i", str(tmp_path / "tx.csv"), "--surveys",
            str(tmp_path / "answers.csv"), "-f", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["row"], error["column"]) == (5, "score")
