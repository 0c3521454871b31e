"""`fidelite metrics`: every column can be named, bad option values are one clear usage
error (JSON with --format json) before anything is read, and --format csv keeps the
summary and the definition."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

# a: tickets t1, t2 in two categories; b: t3, t4 (drinks only), t4 refunded.
MAPPED = """
client,date,total,ticket,sku,cat,qty,ch,code,ret
a,2024-01-01,10,t1,p1,drinks,1,shop,,false
a,2024-01-02,20,t2,p2,food,2,web,SPRING,false
b,2024-01-03,30,t3,p1,drinks,1,shop,,false
b,2024-01-04,5,t4,p3,drinks,1,shop,,false
b,2024-01-05,5,t4,p3,drinks,1,shop,,true
"""
MAPPING = [
    "--customer-col", "client", "--time-col", "date", "--amount-col", "total",
    "--order-col", "ticket", "--product-col", "sku", "--category-col", "cat",
    "--quantity-col", "qty", "--channel-col", "ch", "--coupon-col", "code",
    "--refund-col", "ret",
]  # fmt: skip


def _json(args: list[str], code: int = 0) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == code, result.output
    out: dict[str, object] = json.loads(result.stdout)
    return out


def _error(args: list[str], code: int) -> str:
    error = _json(args, code)["error"]
    assert isinstance(error, dict)
    return str(error["message"])


def test_every_transaction_column_can_be_named(write_csv: Callable[..., Path]) -> None:
    path = str(write_csv(MAPPED))
    out = _json(["metrics", "multi-product", "-i", path, "--by", "category", *MAPPING])
    # Repeat customers a (t1, t2) and b (t3, t4); only a bought two categories.
    assert out["rows"] == [
        {
            "customers": 2,
            "repeat_customers": 2,
            "multi_category_customers": 1,
            "multi_category_rate": 50.0,
        }
    ]
    params = out["parameters"]
    assert isinstance(params, dict)
    assert params["optional_columns"] == [
        "category", "channel", "coupon_code", "order_id", "product_id", "quantity", "refund"
    ]  # fmt: skip


def test_a_named_quantity_column_is_validated_under_its_name(
    write_csv: Callable[..., Path],
) -> None:
    path = str(
        write_csv(MAPPED.replace("a,2024-01-02,20,t2,p2,food,2", "a,2024-01-02,20,t2,p2,food,-2"))
    )
    message = _error(["metrics", "repeat-rate", "-i", path, *MAPPING], 1)
    assert message.endswith("line 3, column 'qty': negative quantity: '-2'")


def test_without_the_category_option_the_category_column_is_missing(
    write_csv: Callable[..., Path],
) -> None:
    path = str(write_csv(MAPPED))
    args = ["metrics", "multi-product", "-i", path, "--by", "category", *MAPPING[:-10]]
    assert _error(args, 1).endswith("column 'category': this metric needs a 'category' column")


def test_survey_columns_can_be_named(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        client;when;q;note
        a;05.01.2024 10:00;recommend;10
        b;06.01.2024 11:00;nps;9
        c;07.01.2024 12:00;nps;3
        """
    )
    names = ["--survey-customer-col", "client", "--survey-time-col", "when",
             "--question-col", "q", "--score-col", "note"]  # fmt: skip
    out = _json(["metrics", "nps", "-s", str(path), *names])
    # 2 promoters (10, 9) and 1 detractor (3) of 3: 66.6667 - 33.3333.
    assert out["rows"] == [
        {"answers": 3, "promoters": 2, "passives": 0, "detractors": 1, "nps": 33.3333}
    ]


def test_subscription_columns_can_be_named(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        who,monthly,from,until,tier
        a,10,2024-01-01,2024-02-10,basic
        b,20,2024-01-01,,pro
        """
    )
    out = _json(["metrics", "mrr", "--subscriptions", str(path),
                 "--subscription-customer-col", "who", "--mrr-col", "monthly",
                 "--start-col", "from", "--end-col", "until", "--plan-col", "tier"])  # fmt: skip
    rows = out["rows"]
    assert isinstance(rows, list)
    # February starts at 30; a cancels its 10 on Feb 10: ending 20, gross churn 10 / 30.
    feb = rows[1]
    assert (feb["period"], feb["starting_mrr"], feb["churned_mrr"], feb["ending_mrr"]) == (
        "2024-02", 30.0, 10.0, 20.0
    )  # fmt: skip
    assert feb["gross_mrr_churn_rate"] == 33.3333


TX = "customer_id,timestamp,amount\na,2024-01-01,60\nb,2024-01-02,30\nc,2024-01-03,10\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pareto", "--limit", "-1"], "--limit: must be 0 or more, got -1"),
        (["pareto", "--top", "0"], "--top: must be above 0 and at most 100, got 0"),
        (["basket", "--top", "-1"], "--top: must be 1 or more, got -1"),
        (["basket", "--min-support", "-5"],
         "--min-support: must be at least 0 and at most 100, got -5"),
        (["clv", "--lifespan-years", "-2"], "--lifespan-years: must be above 0, got -2"),
        (["rfm", "--quantiles", "1"], "--quantiles: must be 2 or more, got 1"),
        (["retention", "--timezone", "Mars/X"], "--timezone: unknown time zone 'Mars/X'"),
        (["retention", "--period", "fortnight"],
         "--period: must be day, week, month, quarter or year, not 'fortnight'"),
        (["cohorts", "--period", "quarter"],
         "--period: must be day, week or month, not 'quarter'"),
        (["cohorts", "--kind", "bracket", "--brackets", "0-0"],
         "--brackets: brackets count days after the first purchase, from day 1 (day 0 is "
         "the first purchase itself, so every customer is in it), not '0-0'"),
        (["cohorts", "--brackets", "0-7,8-30"],
         "--brackets: brackets count days after the first purchase, from day 1 (day 0 is "
         "the first purchase itself, so every customer is in it), not '0-7,8-30'"),
        (["repurchase", "--days", "0,30"],
         "--days: expected whole days above 0 separated by commas, not '0,30'"),
        (["retention", "--delimiter", ";;"],
         "--delimiter: ';;' is not a delimiter: give one character such as , ; | or tab"),
        (["loyalty-kinds", "--price-share", "150"],
         "--price-share: must be at least 0 and at most 100, got 150"),
    ],
)  # fmt: skip
def test_bad_option_value_is_one_usage_error(
    write_csv: Callable[..., Path], args: list[str], message: str
) -> None:
    path = str(write_csv(TX))
    assert _error(["metrics", args[0], "-i", path, *args[1:]], 2) == message
    # Without --format json, the same check answers as a usage error on stderr.
    plain = CliRunner().invoke(app, ["metrics", args[0], "-i", path, *args[1:]])
    assert plain.exit_code == 2
    assert "Traceback" not in plain.output and plain.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["metrics", "nps", "-s", "S", "-f", "json", "--bogus"], "No such option: --bogus"),
        (["metrics", "nps", "-s", "S", "--format=json", "--period"],
         "Option '--period' requires an argument."),
        (["metrics", "nps", "--format", "json"], "Missing option '--surveys' / '-s'."),
        (["clv", "health", "-fjson", "-i", "S", "--what"], "No such option: --what"),
    ],
)  # fmt: skip
def test_usage_errors_click_finds_are_json_too(
    write_csv: Callable[..., Path], args: list[str], message: str
) -> None:
    """An unknown option, a missing one or one without its value is the usage error
    object on stdout with JSON asked for, as bad values are; click's box otherwise."""
    path = str(write_csv("customer_id,timestamp,question,score\na,2024-01-01,nps,9\n"))
    args = [path if a == "S" else a for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout) == {"error": {"code": "usage", "message": message}}
    plain = CliRunner().invoke(
        app, [a for a in args if "json" not in a and a not in ("-f", "--format")]
    )
    assert plain.exit_code == 2
    assert plain.stdout == "" and message.split(":")[0].split("'")[0] in plain.stderr


def test_cohorts_help_lists_the_periods_it_accepts() -> None:
    """The help of --period states what the command takes, no more."""
    result = CliRunner().invoke(app, ["metrics", "cohorts", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "day, week or month" in result.stdout
    assert "quarter" not in result.stdout


def test_program_kpis_refuses_an_unknown_time_zone_before_opening_anything(
    tmp_path: Path,
) -> None:
    db = tmp_path / "nonexist.db"
    args = ["metrics", "program-kpis", "--db", str(db), "--timezone", "Mars/X"]
    assert _error(args, 2) == "--timezone: unknown time zone 'Mars/X'"
    assert not db.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["metrics", "program-kpis", "--db", "{dir}/nonexist.db"],
        ["metrics", "retention", "-i", "sqlite:///{dir}/nothere.db"],
        ["metrics", "engagement", "-i", "{dir}/nothere.db#cafe"],
    ],
)
def test_missing_program_database_is_an_error_and_is_not_created(
    tmp_path: Path, args: list[str]
) -> None:
    message = _error([a.format(dir=tmp_path) for a in args], 1)
    assert "database file not found" in message
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_file_without_fidelite_tables_is_named_so(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    before = path.read_bytes()
    message = _error(["metrics", "retention", "-i", f"sqlite:///{path}"], 1)
    assert message.endswith("not a fidelite program database (it has no fidelite tables)")
    assert path.read_bytes() == before
    empty = tmp_path / "empty.db"
    empty.touch()
    message = _error(["metrics", "program-kpis", "--db", str(empty)], 1)
    assert message.endswith("the database file is empty: not a fidelite program database")


@pytest.mark.parametrize(
    "option", [["metrics", "engagement", "-i"], ["metrics", "program-kpis", "--db"]]
)
def test_a_transactions_file_given_for_a_program_database_is_named_so(
    tmp_path: Path, option: list[str]
) -> None:
    path = tmp_path / "all_customers.csv"
    path.write_text("customer_id,timestamp,amount\nann,2024-01-05,10\n")
    message = _error([*option, str(path)], 1)
    # The file ends in .csv, as a transactions file should: say that this command needs
    # a program database, and how to name one.
    assert message == (
        f"sqlite:///{path}: a .csv file, not a program database: this command reads the "
        "program database (its events and ledger); name a program database as "
        "PATH.db#PROGRAM, sqlite:///PATH.db#PROGRAM or a PostgreSQL URL"
    )
    assert path.read_text() == "customer_id,timestamp,amount\nann,2024-01-05,10\n"


def test_benchmark_refuses_json_that_is_not_a_metric_result(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text("[]")
    args = ["metrics", "benchmark", "--result", str(path), "--column", "x", "--reference", "1"]
    assert _error(args, 1) == (
        f"{path}: not a metric result: expected a JSON object with metric and rows, as "
        "`fidelite metrics NAME --format json` prints"
    )


def test_engines_that_cannot_run_a_metric_say_so(tmp_path: Path) -> None:
    db = str(tmp_path / "shop.db")
    assert _error(["metrics", "engagement", "-i", db, "--engine", "spark"], 2).startswith(
        "engagement runs on DuckDB only"
    )
    assert _error(["metrics", "program-kpis", "--db", db, "--engine", "spark"], 2).startswith(
        "--engine spark applies to the --input transactions"
    )
    assert not (tmp_path / "shop.db").exists()


def test_csv_format_keeps_the_summary_and_definition(write_csv: Callable[..., Path]) -> None:
    path = str(write_csv(TX))
    result = CliRunner().invoke(app, ["metrics", "pareto", "-i", path, "--top", "34", "-f", "csv"])
    assert result.exit_code == 0, result.output
    comments = result.stderr.splitlines()
    assert comments[0] == "# metric: pareto"
    assert comments[1].startswith("# definition: Share of revenue from the top 34 % of customers")
    # ceil(34 % x 3) = 2 customers, a and b: 90 of 100.
    assert "# summary.top_revenue_share: 90.0" in comments
    assert comments[-1].startswith("# parameters: ")
    assert json.loads(comments[-1].removeprefix("# parameters: "))["top_percent"] == 34.0
    assert all(line.startswith("# ") for line in comments)
    # Standard output is a plain CSV file: its first line is the header.
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["customer_id"], r["revenue"]) for r in rows] == [("a", "60.0"), ("b", "30.0")]


def test_table_output_states_input_zone_and_engine(write_csv: Callable[..., Path]) -> None:
    """The table says how it was computed, as JSON and CSV do: RFM recency counts local
    days, so the same file gives other numbers in another zone."""
    path = write_csv("customer_id,timestamp,amount\na,2024-01-01T23:30:00+00:00,10\n")
    args = ["metrics", "rfm", "-i", str(path), "--timezone", "Asia/Tokyo"]
    result = CliRunner().invoke(app, [*args, "--format", "table"])
    assert result.exit_code == 0, result.output
    expected = (
        f"parameters — quantiles: 5; observation end: 2024-01-02; input: {path}; rows: 1; "
        "timezone: Asia/Tokyo; date format: ISO 8601; optional columns: (none); "
        "engine: duckdb; money places: 2"
    )
    # the line is wrapped at the terminal's width (a long path even inside a word):
    # compare without white space
    assert "".join(result.stdout.split()).endswith("".join(expected.split()))


def test_a_folder_given_as_input_is_named_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    message = _error(["metrics", "retention", "-i", str(folder)], 1)
    assert message == f"{folder}: is a folder, not a file (give one CSV or Parquet file)"
    assert list(folder.iterdir()) == []
