"""A repeat customer whose repeat days are worth 0 (e.g. free items) is outside
Gamma-Gamma (positive spends only): left out of the spend fit with a note naming them,
instead of stopping `clv predict` for the whole base (lifetimes' CDNOW_master has one,
customer 10244)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from tests.clv.cdnow import datasets_dir

runner = CliRunner()
_register()

NOTE = (
    "gammagamma: left out 1 customer with repeat purchases whose mean repeat value "
    "(monetary_value) is not positive: customer_id zero (0); Gamma-Gamma describes "
    "positive spends (zero-amount repeat days, e.g. free items, have none)"
)


@pytest.fixture(scope="module")
def cdnow_with_zero(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CDNOW sample as transactions, plus a customer whose one repeat day is worth 0."""
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    lines = ["customer_id,timestamp,amount"]
    with (datasets_dir() / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _, sample_id, day, _, value = line.split()
            lines.append(f"{sample_id},{day[:4]}-{day[4:6]}-{day[6:]},{value}")
    lines += ["zero,1997-02-07,15.96", "zero,1997-03-07,0.00"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _published(params: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in params.items()}


def test_fit_gammagamma_leaves_out_zero_spend_customer(cdnow_with_zero: Path) -> None:
    args = ["clv", "fit", "-i", str(cdnow_with_zero), "-m", "gammagamma"]
    result = runner.invoke(app, [*args, "--calibration-end", "1997-09-30", "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    # The Fader & Hardie note's CDNOW estimates, on its 946 repeat customers.
    assert _published(payload["params"]) == {"p": 6.25, "q": 3.74, "gamma": 15.44}
    assert payload["n_customers"] == 946 and payload["converged"] is True
    assert payload["notes"] == [NOTE]


def test_predict_leaves_zero_spend_customer_empty_and_values_the_others(
    cdnow_with_zero: Path, tmp_path: Path
) -> None:
    out = tmp_path / "clv.csv"
    args = ["clv", "predict", "-i", str(cdnow_with_zero), "--calibration-end", "1997-09-30"]
    result = runner.invoke(app, [*args, "-o", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert _published(payload["spend_model"]["params"]) == {"p": 6.25, "q": 3.74, "gamma": 15.44}
    assert payload["spend_model"]["n_customers"] == 946
    assert payload["notes"] == [
        f"{NOTE}; their expected_spend and clv are empty, and "
        "population.existing_customers_expected_value sums the other customers"
    ]
    rows = pa_csv.read_csv(out, convert_options=pa_csv.ConvertOptions(
        column_types={"customer_id": "string"})).to_pylist()  # fmt: skip
    assert len(rows) == 2358
    zero = next(r for r in rows if r["customer_id"] == "zero")
    assert (zero["frequency"], zero["monetary_value"]) == (1, 0)
    assert zero["expected_spend"] is None and zero["clv"] is None
    assert zero["probability_alive"] is not None and zero["expected_purchases"] is not None
    others = [r["clv"] for r in rows if r["customer_id"] != "zero"]
    assert all(v is not None and math.isfinite(v) for v in others)
    total = payload["population"]["existing_customers_expected_value"]
    assert total == pytest.approx(math.fsum(others), rel=1e-9)


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_when_every_repeat_customer_is_worth_0_the_error_says_so(
    tmp_path: Path, command: str
) -> None:
    """Not "needs customers with repeat purchases": they have some, all worth 0."""
    path = tmp_path / "zero.csv"
    path.write_text(
        "customer_id,timestamp,amount\n"
        "a,2024-01-01,10\na,2024-02-01,0\nb,2024-01-05,8\nb,2024-03-01,0\nc,2024-01-09,5\n"
    )
    args = ["clv", command, "-i", str(path), "-f", "json"]
    args += ["-m", "gammagamma"] if command == "fit" else ["-o", str(tmp_path / "out.csv")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"]["message"] == (
        "customer summary: the repeat purchases of every customer who has some "
        "(2 customers) are worth 0 on average: the Gamma-Gamma model describes positive "
        "spends, so it has nothing to fit"
    )
    assert not (tmp_path / "out.csv").exists()
