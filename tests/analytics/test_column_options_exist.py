"""A column option the user names must name a column of the file.

A mistyped ``--order-col`` or ``--refund-col`` used to be ignored as if the file had
no order ids or no refunds: every row its own order, refunds counted as purchases,
exit 0 and no word. Now it is one error naming the option, the column and the file's
columns (with the closest name when there is one), exit 1, nothing on stdout and no
report written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.analytics.errors import InputError
from fidelite.analytics.io import ColumnMapping, LoadOptions, load_transactions
from fidelite.cli.main import _register, app

_register()

TX = """
customer_id,client,timestamp,amount,order_id,ticket,refund
x,a,2024-01-01,10,1,t1,false
x,a,2024-01-02,20,2,t1,false
y,b,2024-01-02,5,1,t2,true
"""
COLUMNS = "customer_id, client, timestamp, amount, order_id, ticket, refund"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("command", "option", "column", "guess"),
    [
        (["metrics", "repeat-rate"], "--order-col", "nope", ""),
        (["metrics", "pareto"], "--refund-col", "rembourse", ""),
        (["metrics", "basket"], "--product-col", "nope", ""),
        (["metrics", "rfm"], "--order-col", "tickets", "; did you mean 'ticket'?"),
        (["metrics", "cohorts"], "--coupon-col", "code", ""),
        (["metrics", "retention"], "--channel-col", "canal", ""),
        (["metrics", "multi-product"], "--category-col", "cat", ""),
        (["metrics", "repeat-rate"], "--quantity-col", "qty", ""),
        (["metrics", "rfm"], "--customer-col", "clien", "; did you mean 'client'?"),
    ],
)
def test_a_named_column_the_file_lacks_is_refused(
    write_csv: Callable[..., Path], command: list[str], option: str, column: str, guess: str
) -> None:
    path = str(write_csv(TX))
    code, stdout, stderr = _run(*command, "-i", path, option, column, "-f", "json")
    assert code == 1
    assert json.loads(stdout)["error"] == {
        "code": "bad_input",
        "message": f"{path}, column '{column}': no column '{column}' (named by {option}; "
        f"columns found: {COLUMNS}{guess})",
        "file": path,
        "row": None,
        "column": column,
    }
    code, stdout, stderr = _run(*command, "-i", path, option, column, "-f", "csv")
    assert (code, stdout) == (1, "")
    assert f"no column '{column}' (named by {option}; " in stderr


def test_a_named_column_that_exists_is_used(write_csv: Callable[..., Path]) -> None:
    path = str(write_csv(TX))
    code, stdout, _ = _run("metrics", "repeat-rate", "-i", path, "-f", "json")
    # x's orders 1 and 2: a repeat customer.
    assert code == 0 and json.loads(stdout)["rows"][0]["repeat_customers"] == 1
    code, stdout, _ = _run(
        "metrics", "repeat-rate", "-i", path, "--order-col", "TICKET", "-f", "json"
    )
    # by ticket, x has one order (t1): no repeat customer; names match in any case.
    assert code == 0 and json.loads(stdout)["rows"][0]["repeat_customers"] == 0


def test_the_report_writes_nothing_on_a_misnamed_column(write_csv: Callable[..., Path]) -> None:
    tx = write_csv(TX)
    out = tx.parent / "o"
    code, stdout, _ = _run(
        "report", str(tx), "--out", str(out), "--refund-col", "rembourse", "--format", "json"
    )
    assert code == 1
    assert (
        "no column 'rembourse' (named by --refund-col; " in json.loads(stdout)["error"]["message"]
    )
    assert not out.exists()


def test_the_loader_refuses_a_renamed_optional_column(write_csv: Callable[..., Path]) -> None:
    options = LoadOptions(columns=ColumnMapping(order_id="nope"))
    with pytest.raises(InputError, match=r"no column 'nope' \(named by --order-col; "):
        load_transactions(write_csv(TX), options)
    # an optional column left at its own name may be absent, as before
    loaded = load_transactions(write_csv("customer_id,timestamp,amount\na,2024-01-01,1", "p.csv"))
    assert loaded.present == frozenset()


SUBS = """
customer_id,mrr,start,fin,formule
c1,10,2024-01-01,2024-02-15,basic
c2,20,2024-01-01,,pro
"""
SUBS_COLUMNS = "customer_id, mrr, start, fin, formule"
ANSWERS = """
customer_id,timestamp,question,score
c1,2024-01-01,nps,9
"""
ANSWER_COLUMNS = "customer_id, timestamp, question, score"


@pytest.mark.parametrize(
    ("option", "column", "guess"),
    [
        ("--end-col", "fim", "; did you mean 'fin'?"),
        ("--plan-col", "plan_name", ""),
        ("--mrr-col", "revenue", ""),
        ("--start-col", "debut", ""),
        ("--subscription-customer-col", "client", ""),
    ],
)
def test_a_named_subscription_column_the_file_lacks_is_refused(
    write_csv: Callable[..., Path], option: str, column: str, guess: str
) -> None:
    path = str(write_csv(SUBS, "subs.csv"))
    # --end-col fim used to read no end date at all: no churn in 2024-02, exit 0.
    args = ["metrics", "mrr", "--subscriptions", path, "--end-col", "fin", option, column]
    code, stdout, _ = _run(*args, "-f", "json")
    assert code == 1
    assert json.loads(stdout)["error"] == {
        "code": "bad_input",
        "message": f"{path}, column '{column}': no column '{column}' (named by {option}; "
        f"columns found: {SUBS_COLUMNS}{guess})",
        "file": path,
        "row": None,
        "column": column,
    }
    code, stdout, stderr = _run(*args, "-f", "csv")
    assert (code, stdout) == (1, "")
    assert f"no column '{column}' (named by {option}; " in stderr


def test_a_named_subscription_column_that_exists_is_used(write_csv: Callable[..., Path]) -> None:
    path = str(write_csv(SUBS, "subs.csv"))
    code, stdout, _ = _run(
        "metrics", "mrr", "--subscriptions", path, "--end-col", "FIN", "--plan-col", "formule",
        "-f", "json",
    )  # fmt: skip
    assert code == 0
    february = json.loads(stdout)["rows"][1]
    assert (february["churned_mrr"], february["ending_mrr"]) == (10.0, 20.0)


@pytest.mark.parametrize(
    ("command", "option", "column", "guess"),
    [
        (["metrics", "nps"], "--score-col", "scor", "; did you mean 'score'?"),
        (["metrics", "csat"], "--question-col", "q", ""),
        (["metrics", "ces"], "--survey-customer-col", "client", ""),
        (["metrics", "loyalty-index"], "--survey-time-col", "date", ""),
    ],
)
def test_a_named_survey_column_the_file_lacks_is_refused(
    write_csv: Callable[..., Path], command: list[str], option: str, column: str, guess: str
) -> None:
    path = str(write_csv(ANSWERS, "answers.csv"))
    code, stdout, _ = _run(*command, "-s", path, option, column, "-f", "json")
    assert code == 1
    assert json.loads(stdout)["error"]["message"] == (
        f"{path}, column '{column}': no column '{column}' (named by {option}; "
        f"columns found: {ANSWER_COLUMNS}{guess})"
    )
    code, stdout, stderr = _run(*command, "-s", path, option, column, "-f", "csv")
    assert (code, stdout) == (1, "")
    assert f"no column '{column}' (named by {option}; " in stderr


def test_loyalty_kinds_and_report_refuse_a_misnamed_survey_or_subscription_column(
    write_csv: Callable[..., Path],
) -> None:
    tx = write_csv(TX)
    answers = str(write_csv(ANSWERS, "answers.csv"))
    code, stdout, _ = _run(
        "metrics", "loyalty-kinds", "-i", str(tx), "-s", answers, "--question-col", "q",
        "-f", "json",
    )  # fmt: skip
    assert code == 1
    assert "no column 'q' (named by --question-col; " in json.loads(stdout)["error"]["message"]
    subs = str(write_csv(SUBS, "subs.csv"))
    out = tx.parent / "o"
    code, stdout, _ = _run(
        "report", str(tx), "--subscriptions", subs, "--end-col", "fim", "--out", str(out),
        "--format", "json",
    )  # fmt: skip
    assert code == 1
    assert "no column 'fim' (named by --end-col; " in json.loads(stdout)["error"]["message"]
    assert not out.exists()
