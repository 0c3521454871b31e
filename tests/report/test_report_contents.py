"""What report.json holds and what it says it leaves out (not_included), exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

# Baskets: A/o1 {P1, P2}, A/o2 {P1}, B/o3 {P1, P2}, B/o4 {P3}, C/o5 {P3}, D/o6 {P3},
# D/o7 {P3}: 7 baskets; P1 in 3, P2 in 2, P3 in 4; {P1, P2} together in 2.
# Repeat customers (2+ orders): A, B, D; A and B bought more than one product.
TX = """customer_id,timestamp,amount,order_id,product_id
A,2024-01-03,10,o1,P1
A,2024-01-03,5,o1,P2
A,2024-02-10,30,o2,P1
B,2024-01-20,50,o3,P1
B,2024-01-20,8,o3,P2
B,2024-03-01,7,o4,P3
C,2024-02-05,5,o5,P3
D,2024-02-01,9,o6,P3
D,2024-03-02,9,o7,P3
"""
ANSWERS = """customer_id,timestamp,question,score
A,2024-01-05,nps,10
B,2024-01-06,nps,3
A,2024-01-05,ces,6
B,2024-01-06,ces,3
A,2024-01-05,share_of_wallet,40
B,2024-01-06,share_of_wallet,70
"""
PER_CUSTOMER = {"rfm_customers", "loyalty_kinds", "health_and_churn_risk", "clv_predictions",
                "engagement", "program_kpis", "coupon_effectiveness", "benchmark",
                "repurchase_per_product", "bracket_retention"}  # fmt: skip


def _report(tmp_path: Path, tx: str, *extra: str, answers: str | None = None) -> dict[str, Any]:
    (tmp_path / "tx.csv").write_text(tx)
    args = ["report", str(tmp_path / "tx.csv"), "--out", str(tmp_path / "out"), "-f", "json"]
    if answers is not None:
        (tmp_path / "answers.csv").write_text(answers)
        args += ["--surveys", str(tmp_path / "answers.csv")]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((tmp_path / "out" / "report.json").read_text())
    return data


def _html(tmp_path: Path) -> str:
    return (tmp_path / "out" / "report.html").read_text()


def test_product_column_adds_multi_product_buyers_and_basket_affinity(tmp_path: Path) -> None:
    data = _report(tmp_path, TX)
    metrics = data["metrics"]
    assert metrics["multi_product"]["rows"] == [
        {"customers": 4, "repeat_customers": 3, "multi_product_customers": 2,
         "multi_product_rate": 66.6667}
    ]  # fmt: skip
    assert metrics["basket_affinity"]["parameters"]["baskets"] == 7
    assert metrics["basket_affinity"]["rows"] == [
        {"a": "P1", "b": "P2", "baskets_with_both": 2, "baskets_with_a": 3, "baskets_with_b": 2,
         "support": 28.5714, "confidence_a_to_b": 66.6667, "confidence_b_to_a": 100.0,
         "lift": 2.3333}
    ]  # fmt: skip
    assert set(data["not_included"]) == PER_CUSTOMER | {
        "nps_trend", "csat", "ces", "share_of_wallet", "recurring_revenue"
    }  # fmt: skip
    html = _html(tmp_path)
    section = html[html.index("<h2>Products bought together</h2>") :]
    section = section[: section.index("</section>")]
    assert "66.7 % of repeat customers (2 of 3) bought more than one product" in section
    cells = re.findall(r"<td>([^<]*)</td>", section)
    assert cells == ["P1", "P2", "2", "28.6 %", "66.7 %", "100.0 %", "2.33"]


def test_without_products_or_surveys_not_included_says_why(tmp_path: Path) -> None:
    data = _report(tmp_path, "".join(line.rsplit(",", 1)[0] + "\n" for line in TX.splitlines()))
    assert "multi_product" not in data["metrics"] and "basket_affinity" not in data["metrics"]
    products = "needs a product column (product_id, or name it with --product-col)"
    surveys = "needs a survey answers file (--surveys)"
    expected_keys = PER_CUSTOMER | {"multi_product", "basket_affinity", "nps_trend", "csat",
                                    "ces", "share_of_wallet", "recurring_revenue"}  # fmt: skip
    assert set(data["not_included"]) == expected_keys
    assert data["not_included"]["multi_product"] == products
    assert data["not_included"]["basket_affinity"] == products
    assert data["not_included"]["ces"] == surveys
    assert data["not_included"]["recurring_revenue"] == (
        "needs a subscriptions file (--subscriptions)"
    )
    assert data["not_included"]["rfm_customers"].startswith(
        "per-customer RFM scores: one row per customer would make report.json as large as the input"
    )
    assert "<h2>Products bought together</h2>" not in _html(tmp_path)


def test_surveys_add_ces_and_share_of_wallet_and_name_the_missing_question(
    tmp_path: Path,
) -> None:
    data = _report(tmp_path, TX, answers=ANSWERS)
    surveys = data["surveys"]
    assert surveys["ces"]["rows"] == [{"answers": 2, "ces": 4.5, "easy": 1, "easy_rate": 50.0}]
    assert surveys["share_of_wallet"]["rows"] == [
        {"answers": 2, "share_of_wallet": 55.0, "majority_share_answers": 1}
    ]
    assert "csat" not in surveys  # no csat answers: no score rather than a null one
    assert data["not_included"]["csat"] == "the survey answers file has no csat answers"
    assert set(data["not_included"]) == PER_CUSTOMER | {"csat", "recurring_revenue"}
    html = _html(tmp_path)
    section = html[html.index("<h2>Satisfaction, effort and share of wallet</h2>") :]
    section = section[: section.index("</section>")]
    cells = re.findall(r"<td>([^<]*)</td>", section)
    assert cells == [
        "Effort (CES)", "2", "4.5 / 7", "mean answer, 7 = very easy; 50.0 % found it easy (5-7)",
        "Share of wallet", "2", "55.0 %",
        "mean share of their spending in the category that customers say goes to you",
    ]  # fmt: skip
