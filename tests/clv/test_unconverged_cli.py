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


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["customer_id", "timestamp", "amount", "order_id"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def flat_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 customers buying every one to three weeks until the end, every order 25.00:
    Gamma-Gamma runs p and q to their bound (no spread of spend at all) on any machine.

    BG/NBD on this file has no sign of churn either, but whether its optimiser stops on
    the flat ridge or at a bound depends on the machine's floating point (a file whose
    fit reached b's bound on one machine converged on another), so the tests take its
    verdict as the fit gives it and test BG/NBD's own warning on ``single_csv``."""
    rng = random.Random(7)
    rows, oid, end = [], 0, dt.datetime(2023, 12, 31)
    for c in range(40):
        t = dt.datetime(2023, 1, 1) + dt.timedelta(
            days=rng.randint(0, 300), minutes=rng.randint(0, 1439)
        )
        step = dt.timedelta(days=rng.choice([7, 14, 21]))
        while t < end:
            oid += 1
            rows.append([f"c{c:02d}", t.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "25.00", f"O{oid}"])
            t += step
    return _write(tmp_path_factory.mktemp("flat") / "tx.csv", rows)


@pytest.fixture(scope="module")
def single_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 customers with one purchase each: no repeat purchase, so BG/NBD cannot be
    identified, a verdict read from the data, not from where the optimiser stopped."""
    rows = [[f"c{c:02d}", f"2023-{1 + c % 12:02d}-{1 + c % 27:02d}T10:00:00+00:00",
             f"{10 + c}.00", f"O{c}"] for c in range(30)]  # fmt: skip
    return _write(tmp_path_factory.mktemp("single") / "tx.csv", rows)


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
        f"the {role[f['model']]} model did not converge ({f['message']})"
        for f in fits
        if not f["converged"]
    )


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_predict_refuses_unconverged_fits_and_writes_nothing(
    flat_csv: Path, tmp_path: Path, fmt: str
) -> None:
    purchase, spend = _fits(flat_csv, tmp_path)
    # constant amounts: Gamma-Gamma runs to a bound on every machine, though which of
    # p and q gets there first depends on the machine's floating point (['q'] or both)
    assert spend["converged"] is False and spend["at_bound"]
    assert set(spend["at_bound"]) <= {"p", "q"}
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
        assert json.loads(result.stdout)["spend_model"]["converged"] is False


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_fit_warns_when_it_did_not_converge(
    flat_csv: Path, single_csv: Path, tmp_path: Path, fmt: str
) -> None:
    _, spend = _fits(flat_csv, tmp_path)
    purchase = json.loads(_run("fit", "-i", str(single_csv), "-m", "bgnbd", "-f", "json").stdout)
    assert purchase["message"] == (
        "bgnbd: no customer made a repeat purchase: the data do not identify the parameters "
        "(for example no sign of churn, or too few repeat purchases); try a penalizer or "
        "another model"
    )
    for model, fitted, file in (("bgnbd", purchase, single_csv), ("gammagamma", spend, flat_csv)):
        assert fitted["converged"] is False
        result = _run("fit", "-i", str(file), "-m", model, "-f", fmt)
        assert result.exit_code == 0, result.output
        assert result.stderr == (
            f"Warning: {_reasons(fitted)}; its parameters are not estimates of anything "
            "(converged false)\n"
        )


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_validate_warns_when_the_fit_did_not_converge(single_csv: Path, fmt: str) -> None:
    args = ("validate", "-i", str(single_csv), "--calibration-end", "2023-10-31")
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
