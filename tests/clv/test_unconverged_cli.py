"""`fidelite clv` on data whose fits do not converge: predict refuses (unless
--allow-unconverged), every command warns on stderr in every format, in the report's
words (:mod:`fidelite.clv.convergence`)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()


@pytest.fixture(scope="module")
def flat_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 customers with few repeat purchases and no sign of churn: BG/NBD runs b to its
    bound and Gamma-Gamma stops on a flat likelihood (both ``converged`` false)."""
    rng = random.Random(7)
    rows = []
    oid = 0
    for c in range(40):
        t = dt.datetime(2023, 1, 1) + dt.timedelta(
            days=rng.randint(0, 300), minutes=rng.randint(0, 1439)
        )
        for _ in range(rng.choice([1, 1, 2, 3, 5])):
            oid += 1
            for _ in range(rng.choice([1, 1, 2])):
                amount = f"{rng.randint(100, 9000) / 100:.2f}"
                rows.append([f"c{c:02d}", t.strftime("%Y-%m-%dT%H:%M:%S+00:00"), amount, f"O{oid}"])
            t += dt.timedelta(days=rng.randint(0, 120), minutes=rng.randint(0, 600))
    path: Path = tmp_path_factory.mktemp("flat") / "tx.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["customer_id", "timestamp", "amount", "order_id"])
        writer.writerows(rows)
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["clv", *args])


def _fits(flat_csv: Path, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both fits, as predict --allow-unconverged -f json reports them."""
    out = tmp_path / "allowed.csv"
    result = _run("predict", "-i", str(flat_csv), "-o", str(out), "-f", "json",
                  "--allow-unconverged")  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    return payload["purchase_model"], payload["spend_model"]


def _reasons(*fits: dict[str, Any]) -> str:
    role = {"bgnbd": "purchase", "gammagamma": "spend"}
    return "; ".join(
        f"the {role[f['model']]} model did not converge ({f['message']})" for f in fits
    )


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_predict_refuses_unconverged_fits_and_writes_nothing(
    flat_csv: Path, tmp_path: Path, fmt: str
) -> None:
    purchase, spend = _fits(flat_csv, tmp_path)
    assert purchase["converged"] is False and purchase["at_bound"] == ["b"]
    assert spend["converged"] is False
    out = tmp_path / "clv.csv"
    out.write_text("yesterday's predictions\n")
    result = _run("predict", "-i", str(flat_csv), "-o", str(out), "-f", fmt)
    assert result.exit_code == 1
    message = (
        f"{_reasons(purchase, spend)}; the predictions would not be estimates of anything, "
        f"so nothing was written to {out}; pass --allow-unconverged to write them anyway"
    )
    if fmt == "json":
        error = json.loads(result.stdout)["error"]
        assert (error["code"], error["message"]) == ("not_converged", message)
        assert (error["purchase_model"], error["spend_model"]) == (purchase, spend)
    else:
        assert result.stdout == ""
        assert result.stderr == f"error [not_converged] {message}\n"
    assert out.read_text() == "yesterday's predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allowed.csv", "clv.csv"]


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_predict_with_allow_unconverged_writes_and_warns(
    flat_csv: Path, tmp_path: Path, fmt: str
) -> None:
    purchase, spend = _fits(flat_csv, tmp_path)
    out = tmp_path / "clv.csv"
    result = _run("predict", "-i", str(flat_csv), "-o", str(out), "-f", fmt,
                  "--allow-unconverged")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"Warning: {_reasons(purchase, spend)}; the predictions written to {out} are not "
        "estimates of anything (written because of --allow-unconverged)\n"
    )
    assert pa_csv.read_csv(out).num_rows == 40
    if fmt == "json":
        assert json.loads(result.stdout)["purchase_model"]["converged"] is False


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_fit_warns_when_it_did_not_converge(flat_csv: Path, tmp_path: Path, fmt: str) -> None:
    purchase, spend = _fits(flat_csv, tmp_path)
    for model, fitted in (("bgnbd", purchase), ("gammagamma", spend)):
        result = _run("fit", "-i", str(flat_csv), "-m", model, "-f", fmt)
        assert result.exit_code == 0, result.output
        assert result.stderr == (
            f"Warning: {_reasons(fitted)}; its parameters are not estimates of anything "
            "(converged false)\n"
        )


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_validate_warns_when_the_fit_did_not_converge(flat_csv: Path, fmt: str) -> None:
    args = ("validate", "-i", str(flat_csv), "--calibration-end", "2023-10-31")
    fitted = json.loads(_run(*args, "-f", "json").stdout)["fit"]
    assert fitted["converged"] is False
    result = _run(*args, "-f", fmt)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"Warning: {_reasons(fitted)}; its predicted holdout purchases are not estimates "
        "of anything\n"
    )


def test_report_names_an_unconverged_fit_in_the_same_words(flat_csv: Path, tmp_path: Path) -> None:
    purchase, spend = _fits(flat_csv, tmp_path)
    report = json.loads(
        CliRunner()
        .invoke(app, ["report", str(flat_csv), "--out", str(tmp_path / "r"), "-f", "json"])
        .stdout
    )
    assert any(w.startswith(f"Customer lifetime value: {_reasons(purchase, spend)}; ")
               for w in report["warnings"])  # fmt: skip
