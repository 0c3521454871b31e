"""`fidelite clv health`: hand-computed scores and contributions on small files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from tests.clv.cdnow import datasets_dir

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
    assert out["parameters"]["as_of"] == "2024-03-31"
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
    # BG/NBD does not converge on three customers: no P(alive), no churn risk.
    assert [(r["probability_alive"], r["churn_risk"]) for r in out["rows"]] == [(None, None)] * 3
    assert out["summary"]["note"].startswith("probability_alive, churn_risk: null for every")


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


# The analyst's file: BG/NBD stops with b at its bound (converged false) and would give
# customer c, who bought 5 days before the as-of day, P(alive) 0 and a "high" churn risk.
QA_TX = """customer_id,timestamp,amount,order_id,product_id,category,coupon_code
a,2024-01-05T10:00:00,10,o1,A,food,
a,2024-01-05T10:00:00,20,o1,B,drink,
a,2024-01-20T10:00:00,15,o2,A,food,SAVE
b,2024-01-10T09:00:00,5,o3,A,food,
b,2024-01-10T09:00:00,5,o3,B,drink,
b,2024-01-10T09:00:00,5,o3,C,drink,
c,2024-02-01T12:00:00,30,o4,B,drink,
c,2024-03-15T12:00:00,40,o5,C,drink,
d,2024-02-10T12:00:00,100,o6,A,food,
d,2024-03-01T12:00:00,-100,o6,A,food,
e,2024-03-20T12:00:00,50,o7,B,drink,
e,2024-03-20T18:00:00,25,o8,B,drink,
"""
# QA_TX with every customer's purchases on one day (a's second order the same day, c's
# too): no repeat purchase day, so BG/NBD is unidentified and cannot converge on any
# machine (QA_TX's own fit reaches b's bound on some machines and converges on others).
ONE_DAY_TX = QA_TX.replace("a,2024-01-20T10:00:00", "a,2024-01-05T18:00:00").replace(
    "c,2024-03-15T12:00:00", "c,2024-02-01T18:00:00"
)
QA_ANSWERS = """customer_id,timestamp,question,score
a,2024-01-05,nps,10
b,2024-01-06,nps,9
c,2024-01-07,nps,8
d,2024-01-08,nps,6
e,2024-01-09,nps,0
a,2024-01-10,repurchase,10
a,2024-02-01,nps,10
"""
QA_CASES = "customer_id,timestamp\na,2024-03-01\na,2024-03-02\nc,2023-12-01\n"


def test_health_leaves_p_alive_empty_when_bgnbd_does_not_converge(tmp_path: Path) -> None:
    files = (("tx.csv", ONE_DAY_TX), ("answers.csv", QA_ANSWERS), ("cases.csv", QA_CASES))
    for name, text in files:
        (tmp_path / name).write_text(text)
    tx = str(tmp_path / "tx.csv")
    fit = CliRunner().invoke(app, ["clv", "fit", "-i", tx, "-m", "bgnbd", "-f", "json"])
    assert fit.exit_code == 0, fit.output
    fitted = json.loads(fit.stdout)
    assert fitted["converged"] is False
    args = ["clv", "health", "-i", tx, "--surveys", str(tmp_path / "answers.csv"),
            "--support-cases", str(tmp_path / "cases.csv"), "-f", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["summary"]["note"] == (
        "probability_alive, churn_risk: null for every customer: the BG/NBD model did not "
        f"converge ({fitted['message']}), so its P(alive) is not an estimate of anything; "
        "the health scores do not use it"
    )
    assert [(r["customer_id"], r["probability_alive"], r["churn_risk"]) for r in out["rows"]] == [
        (c, None, None) for c in "abcde"
    ]
    # The other components are still computed (as of 2024-03-20, 90-day window; every
    # purchase in the recent window: trends 1.0 x 25 and 1.0 x 15). a: recency
    # 30 x 0.5^(75/90) = 16.84, nps 20 x 10/10, support 10 x 1/3 = 3.33 -> 80.17.
    assert [(r["health_score"], r["days_since_last_purchase"], r["nps_answer"],
             r["support_cases"]) for r in out["rows"]] == [
        (80.17, 75, 10, 2), (85.5, 70, 9, 0), (86.73, 48, 8, 0), (84.22, 39, 6, 0),
        (80.0, 0, 0, 0)
    ]  # fmt: skip
    c = out["rows"][2]  # recency 30 x 0.5^(48/90) = 20.73
    assert (c["recency_points"], c["nps_points"], c["support_points"]) == (20.73, 16.0, 10.0)


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CDNOW_sample.txt as a transactions CSV (one row per purchase record)."""
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    lines = ["customer_id,timestamp,amount"]
    with (datasets_dir() / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _, sample_id, day, _, value = line.split()
            lines.append(f"{sample_id},{day[:4]}-{day[4:6]}-{day[6:]},{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_health_gives_p_alive_and_churn_risk_from_a_converged_fit(cdnow_csv: Path) -> None:
    result = CliRunner().invoke(app, ["clv", "health", "-i", str(cdnow_csv), "-f", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["summary"] == {"customers": 2357, "mean_health_score": 34.5}
    assert round(sum(r["health_score"] for r in out["rows"]) / 2357, 2) == 34.5
    assert [(r["customer_id"], r["days_since_last_purchase"], r["probability_alive"],
             r["churn_risk"]) for r in out["rows"][:3]] == [
        ("0001", 200, 0.6611, "medium"), ("0002", 533, 0.1674, "high"), ("0003", 545, 1.0, "low")
    ]  # fmt: skip
    risks = [r["churn_risk"] for r in out["rows"]]
    assert (risks.count("low"), risks.count("medium"), risks.count("high")) == (1504, 571, 282)


def test_health_json_is_a_metric_result_that_benchmark_reads(tmp_path: Path) -> None:
    for name, text in (("tx.csv", QA_TX), ("answers.csv", QA_ANSWERS), ("cases.csv", QA_CASES)):
        (tmp_path / name).write_text(text)
    tx, answers, cases = (str(tmp_path / n) for n in ("tx.csv", "answers.csv", "cases.csv"))
    args = ["clv", "health", "-i", tx, "--surveys", answers, "--support-cases", cases]
    result = CliRunner().invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out) == ["metric", "definition", "parameters", "rows", "summary"]
    assert out["metric"] == "health"
    assert out["definition"].startswith(
        "Health score 0-100 per purchasing customer as of 2024-03-20 (the last day in the "
        "data): the weighted mean of component scores in [0, 1]: recency = 0.5 ^ (days since "
        "the last purchase / 90) (weight 0.3);"
    )
    assert out["parameters"] == {
        "as_of": "2024-03-20",
        "window_days": 90,
        "weights": {"recency": 0.3, "frequency_trend": 0.25, "spend_trend": 0.15, "nps": 0.2,
                    "support": 0.1},
        "recency_half_life_days": 90.0,
        "churn_risk_thresholds": {"high_below": 0.3, "medium_below": 0.7,
                                  "falling_trend_below": 0.3},
        "surveys": answers,
        "support_cases": cases,
        "input": tx,
        "rows": 12,
        "timezone": "UTC",
        "date_format": "ISO 8601",
        "optional_columns": ["category", "coupon_code", "order_id", "product_id"],
        "engine": "duckdb",
    }  # fmt: skip
    # (82.23 + 85.5 + 94.87 + 84.22 + 80) / 5 = 85.364
    assert (out["summary"]["customers"], out["summary"]["mean_health_score"]) == (5, 85.36)
    args = ["metrics", "benchmark", "--column", "health_score", "--reference", "80", "-f", "json"]
    compared = CliRunner().invoke(app, args, input=result.stdout)
    assert compared.exit_code == 0, compared.output
    bench = json.loads(compared.stdout)
    assert bench["metric"] == "health"
    assert bench["parameters"]["benchmark"] == {
        "column": "health_score", "reference": 80.0, "label": "reference", "compared_in": "rows"
    }  # fmt: skip
    assert [(r["customer_id"], r["difference"], r["versus"]) for r in bench["rows"]] == [
        ("a", 2.23, "above"), ("b", 5.5, "above"), ("c", 14.87, "above"), ("d", 4.22, "above"),
        ("e", 0.0, "equal")
    ]  # fmt: skip
    assert bench["summary"] == out["summary"]


def test_health_csv_prints_the_rows_and_says_what_they_are(tmp_path: Path) -> None:
    # ONE_DAY_TX: P(alive) is null on every machine (QA_TX's fit converges on some).
    (tmp_path / "tx.csv").write_text(ONE_DAY_TX)
    result = CliRunner().invoke(app, ["clv", "health", "-i", str(tmp_path / "tx.csv"), "-f", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "customer_id,health_score,recency_points,frequency_trend_points,spend_trend_points,"
        "nps_points,support_points,days_since_last_purchase,nps_answer,support_cases,"
        "probability_alive,churn_risk"
    )
    # without surveys nor cases the weights are 0.3, 0.25, 0.15 over 0.7: c's recency is
    # 0.5^(48/90) x 42.857 = 29.61, both trends 1.0 -> 35.71 and 21.43
    assert lines[3] == "c,86.76,29.61,35.71,21.43,0.0,0.0,48,,,,"
    assert "# metric: health" in result.stderr
    # (81.2 + 82.14 + 86.76 + 88.88 + 100) / 5
    assert "# summary.mean_health_score: 87.8" in result.stderr


def test_health_takes_the_highest_of_two_nps_answers_at_the_same_time(tmp_path: Path) -> None:
    """Two answers with one timestamp: the highest counts, whatever the row order, as in
    `metrics loyalty-kinds` (before, the score followed the row order: 93.74 or 75.96)."""
    (tmp_path / "tx.csv").write_text(TX)
    outputs = []
    for order in (("10", "2"), ("2", "10")):
        lines = [f"a,2024-03-01T12:00:00,nps,{score}" for score in order]
        (tmp_path / "tie.csv").write_text("customer_id,timestamp,question,score\n"
                                          + "\n".join(lines) + "\n")  # fmt: skip
        args = ["clv", "health", "-i", str(tmp_path / "tx.csv"), "--window-days", "30",
                "--surveys", str(tmp_path / "tie.csv"), "-f", "json"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        a = json.loads(result.stdout)["rows"][0]
        outputs.append((a["nps_answer"], a["nps_points"], a["health_score"]))
        kinds_args = ["metrics", "loyalty-kinds", "-i", str(tmp_path / "tx.csv"),
                      "-s", str(tmp_path / "tie.csv"), "-f", "json"]  # fmt: skip
        kinds = CliRunner().invoke(app, kinds_args)
        assert kinds.exit_code == 0, kinds.output
        assert json.loads(kinds.stdout)["rows"][0]["recommend"] == 10
    # a: (28.65 + 25 + 15 (as above) + NPS 10 -> 20) / 0.9 without a support file
    assert outputs == [(10, 22.22, 98.49)] * 2
