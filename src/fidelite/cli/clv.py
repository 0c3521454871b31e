"""`fidelite clv fit|predict|validate`: buy-till-you-die models from a transactions file.

The per-customer summary (frequency, recency, T, monetary value) comes from
``fidelite.analytics.summary`` (DuckDB or Spark); the models from ``fidelite.clv``.
``fit --format json`` prints ``{"model", "params", "log_likelihood", "std_errors",
"n_customers", ...}``; ``predict`` writes one row per customer to ``--out`` (CSV or
Parquet, written to a temporary file and renamed, so a failed run leaves nothing).

The input options (time zone, date format, delimiter, every column name) are those of
``fidelite metrics``, declared once in :mod:`fidelite.cli.inputs`: a refund or order
column under another name is then read as what it is on every command, never as
purchases.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import typer
from numpy.typing import NDArray

from fidelite.analytics.answers import AnswerColumns
from fidelite.analytics.engine import Dataset, open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions
from fidelite.analytics.summary import calibration_holdout_summary, customer_summary
from fidelite.cli.inputs import survey_options, transaction_options
from fidelite.cli.options import TableJsonOption
from fidelite.cli.output import OutputFormat, console, err_console, fail, print_json, print_rows
from fidelite.clv import gammagamma, sbg
from fidelite.clv.convergence import convergence_warning
from fidelite.clv.fitting import FitError, FitResult
from fidelite.clv.health import alive_risk
from fidelite.clv.predictions import (
    UNITS_PER_YEAR,
    horizon_limit_message,
    max_horizon,
    monthly_steps,
    purchase_model,
)
from fidelite.clv.triples import FloatArray, SummaryError, compress
from fidelite.clv.validation import holdout_report
from fidelite.clv.valuation import value_customers

app = typer.Typer(
    help="Customer lifetime value: fit BG/NBD, Pareto/NBD, MBG/NBD, Gamma-Gamma or sBG "
    "and predict per customer.\n\n"
    "Example: fidelite clv fit --input tx.csv --model bgnbd --calibration-end 1997-09-30 "
    "--time-unit week --format json",
    no_args_is_help=True,
)


class Model(StrEnum):
    """Models accepted by ``--model``."""

    bgnbd = "bgnbd"
    paretonbd = "paretonbd"
    mbgnbd = "mbgnbd"
    gammagamma = "gammagamma"
    sbg = "sbg"


class PurchaseModelName(StrEnum):
    """Purchase models accepted by ``predict`` and ``validate``."""

    bgnbd = "bgnbd"
    paretonbd = "paretonbd"
    mbgnbd = "mbgnbd"


class TimeUnit(StrEnum):
    """Time unit of recency, T and the rate parameters."""

    day = "day"
    week = "week"


DAYS = {"day": 1, "week": 7}

INPUT = typer.Option(..., "--input", "-i", help="Transactions file (.csv or .parquet).")
CAL_END = typer.Option(
    None,
    "--calibration-end",
    help="Last day of the fitting period (YYYY-MM-DD); default: last day in the data.",
)
UNIT = typer.Option(TimeUnit.week, "--time-unit", help="day or week (weeks at daily precision).")
PENALIZER = typer.Option(0.0, "--penalizer", help="L2 penalty on the parameters (0 = none).")
FORMAT = TableJsonOption  # eager: a bad input option is refused in this format
ENGINE = typer.Option("duckdb", "--engine", help="duckdb (embedded) or spark (local mode).")
PERIOD = typer.Option(
    1.0, "--period-length", help="sbg only: billing period in time units (a payment covers one)."
)


def _parse_day(value: str | None, option: str, fmt: OutputFormat) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        why = str(exc)
        if why.startswith("Invalid isoformat"):
            why = "dates run from 0001-01-01 to 9999-12-31"
        fail(f"{option}: expected a date YYYY-MM-DD, got {value!r} ({why})", code="usage", fmt=fmt)


def _check_number(
    value: float, option: str, fmt: OutputFormat, *, minimum: float = 0.0, strict: bool = False
) -> None:
    """Refuse (usage error, exit 2, before any file is read) a number that is not finite
    or is below ``minimum`` (or equal to it, when ``strict``): NaN compares false with
    every bound, so a bare ``value <= 0`` test would let it through."""
    above = value > minimum if strict else value >= minimum
    if not (math.isfinite(value) and above):
        fail(
            f"{option} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value}",
            code="usage",
            fmt=fmt,
        )


def _open(input: Path, engine: str, options: LoadOptions) -> Dataset:
    _check_not_folder(input)
    return open_dataset(input, engine="spark" if engine == "spark" else "duckdb", options=options)


def _check_not_folder(input: Path) -> None:
    """A folder given as ``--input`` is named as one (the reader says "file not found")."""
    if input.is_dir():
        raise InputError(
            "is a folder, not a file: give a transactions file (.csv or .parquet)",
            file=str(input),
        )


def _check_customers(table: pa.Table, end: date) -> None:
    """No customer in the summary: say that only purchases up to ``end`` count.

    A file whose rows are all refunds, or all after the calibration end, has none.
    """
    if table.num_rows == 0:
        raise SummaryError(
            f"the summary has no customers: no purchase on or before {end} (the calibration "
            "end); refund rows (a negative amount or a refund flag) are not purchases"
        )


def _observed_to(ds: Dataset, day: date | None, option: str) -> tuple[date, list[str]]:
    """``day`` (default: the last day in the data), with a note when it is after that day.

    An end after the data is allowed, as lifetimes allows it (the day the file was
    extracted is often a few days after the last sale): the days up to it count as
    observed days without purchases. The note says so, since days the file does not
    cover would make customers seem to have bought nothing for that long.
    """
    last = ds.last_day()
    if day is None or day <= last:
        return (last if day is None else day), []
    days = (day - last).days
    return day, [
        f"{option} {day} is {days:,} day{'s' if days != 1 else ''} after the last day in "
        f"the data ({last}): those days count as observed days without purchases"
    ]


@contextmanager
def _step(fmt: OutputFormat, label: str) -> Iterator[None]:
    """A spinner on stderr for people; silent with machine formats."""
    if fmt is OutputFormat.table:
        with err_console.status(label):
            yield
    else:
        yield


@contextmanager
def _errors(fmt: OutputFormat) -> Iterator[None]:
    """Turn input, data and fitting problems into one clear error and a non-zero exit."""
    try:
        yield
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except SummaryError as exc:
        fail(f"customer summary: {exc}", code="bad_input", fmt=fmt)
    except FitError as exc:
        fail(str(exc), code="fit_failed", fmt=fmt)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)


def _column(table: pa.Table, name: str) -> FloatArray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _fit_model(
    model: str, table: pa.Table, unit: str, penalizer: float, period_length: float
) -> FitResult:
    """Fit ``model`` on a customer summary table (columns frequency, recency, T, ...)."""
    x, t, T = _column(table, "frequency"), _column(table, "recency"), _column(table, "T")
    if model == "gammagamma":
        m = _column(table, "monetary_value")
        # customers outside the model are left out with a note (_left_out_notes)
        return gammagamma.fit(gammagamma.inside_data(x, m), penalizer=penalizer)
    if model == "sbg":
        return sbg.fit(_churn_data(x, t, T, unit, period_length), penalizer=penalizer)
    triples = compress(x, t, T, resolution=1.0 / DAYS[unit], keep_inverse=False)
    return purchase_model(model).fit(triples, penalizer=penalizer)


def _churn_data(
    x: FloatArray, t: FloatArray, T: FloatArray, unit: str, period_length: float
) -> sbg.ChurnData:
    """sBG rows from the summary: one payment per purchase day (x + 1 payments).

    The calibration end day is observed whole (its payments are in the summary), for
    renewals paid and missed alike. A customer churned when the renewal due
    ``period_length`` after their last payment fell on or before the calibration end
    without a payment (gap to the end >= the period); they churned in period x + 1.
    Otherwise they are still subscribed: they survived the x renewals they paid and
    their next one is not yet due, so they count as surviving x renewals, S(x). Counting
    a payment of the end day but not a renewal missed that day would overstate
    retention. The gap is compared in whole days, so weeks (days / 7) do not round a due
    day either way.
    """
    days = DAYS[unit]
    gap_days = np.rint((T - t) * days)
    churned = gap_days >= period_length * days * (1.0 - 1e-12)
    return sbg.ChurnData.from_payments(x + 1.0, churned)


def _print_fit(result: FitResult, context: dict[str, Any], fmt: OutputFormat) -> None:
    payload = {**result.as_dict(), **context}
    if fmt is OutputFormat.json:
        print_json(payload)
        return
    rows = [
        {"parameter": k, "estimate": f"{v:.6g}", "std_error": _fmt(result.std_errors[k])}
        for k, v in result.params.items()
    ]
    print_rows(
        rows, OutputFormat.table, title=f"{result.model} fitted on {result.n_customers:,} customers"
    )
    console.print(
        f"log-likelihood {result.log_likelihood:.4f} · {result.n_unique:,} distinct rows · "
        f"{result.iterations} iterations · {result.message}"
    )
    console.print(_time_line(result.model, context), highlight=False, markup=False)
    _print_notes(context.get("notes", []))


# Parameters counted in the time unit (scales of the purchase and dropout rates).
_TIMED_PARAMS = {"bgnbd": "alpha", "mbgnbd": "alpha", "paretonbd": "alpha and beta"}


def _time_line(model: str, context: dict[str, Any]) -> str:
    """The fit's time unit (and which parameters count in it) and its calibration end."""
    unit = context["time_unit"]
    timed = _TIMED_PARAMS.get(model)
    what = f"time unit {unit}" + (f" ({timed} in {unit}s)" if timed else "")
    return f"{what} · calibration end {context['calibration_end']} · input {context['input']}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


@app.command("fit")
@transaction_options
def fit_command(
    input: Path = INPUT,
    model: Model = typer.Option(
        ..., "--model", "-m", help="bgnbd, paretonbd, mbgnbd, gammagamma or sbg."
    ),
    calibration_end: str | None = CAL_END,
    time_unit: TimeUnit = UNIT,
    penalizer: float = PENALIZER,
    period_length: float = PERIOD,
    fmt: OutputFormat = FORMAT,
    engine: str = ENGINE,
    *,
    load: LoadOptions,
) -> None:
    """Fit one model on the customers' calibration-period summary.

    Example: fidelite clv fit -i tx.csv -m bgnbd --calibration-end 1997-09-30 -f json
    """
    _check_number(penalizer, "--penalizer", fmt)
    _check_number(period_length, "--period-length", fmt, strict=True)
    end = _parse_day(calibration_end, "--calibration-end", fmt)
    options = replace(load, materialize=False)
    with _errors(fmt):
        with _step(fmt, f"Summarising {input}"):
            ds = _open(input, engine, options)
            used_end, notes = _observed_to(ds, end, "--calibration-end")
            table = customer_summary(
                ds, observation_end=end, time_unit=time_unit.value, engine=ds.engine
            )
            _check_customers(table, used_end)
        with _step(fmt, f"Fitting {model.value}"):
            result = _fit_model(model.value, table, time_unit.value, penalizer, period_length)
    context: dict[str, Any] = {"input": str(input), "calibration_end": used_end,
                               "time_unit": time_unit.value}  # fmt: skip
    if model is Model.gammagamma:
        left_out = gammagamma.outside_model(
            _column(table, "frequency"), _column(table, "monetary_value")
        )
        notes += _left_out_notes(table, left_out, predicted=False)
        heavy_tail = gammagamma.infinite_mean_note(result.param_array())
        notes += [heavy_tail] if heavy_tail else []
    if notes:
        context["notes"] = notes
    _print_fit(result, context, fmt)
    _warn(
        convergence_warning(
            [result], "its parameters are not estimates of anything (converged false)"
        )
    )


def _warn(warning: str | None) -> None:
    """``Warning: ...`` on stderr, whatever ``--format``: the output stays what scripts
    parse, and a person running a script still sees it."""
    if warning:
        err_console.print(f"Warning: {warning}", markup=False, highlight=False, soft_wrap=True)


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"--out: use a .csv or .parquet file name, got {out.name!r}")
    if not out.parent.is_dir():
        raise ValueError(f"--out: folder {str(out.parent)!r} does not exist")


def _write_table(table: pa.Table, out: Path) -> None:
    """Write CSV or Parquet (by extension) to a temporary file, then rename into place."""
    _check_out(out)
    suffix = out.suffix.lower()
    tmp = out.with_name(f".{out.name}.partial")
    try:
        if suffix == ".csv":
            pa_csv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


@app.command("predict")
@transaction_options
def predict_command(
    input: Path = INPUT,
    out: Path = typer.Option(
        ..., "--out", "-o", help="Per-customer predictions (.csv or .parquet)."
    ),
    model: PurchaseModelName = typer.Option(
        PurchaseModelName.bgnbd, "--model", "-m", help="bgnbd, paretonbd or mbgnbd."
    ),
    horizon: float | None = typer.Option(
        None,
        "--horizon",
        help="Prediction horizon in time units (--time-unit); default one year: 52 weeks, "
        "or 365 days with --time-unit day; at most 100 years (5217.857 weeks, 36525 days).",
    ),
    discount_rate: float = typer.Option(
        0.1,
        "--discount-rate",
        help="Yearly discount rate for CLV, applied per month: the purchases expected in "
        "each month of the horizon are discounted at its end.",
    ),
    calibration_end: str | None = CAL_END,
    time_unit: TimeUnit = UNIT,
    penalizer: float = PENALIZER,
    allow_unconverged: bool = typer.Option(
        False,
        "--allow-unconverged",
        help="Write the predictions even when a fit did not converge (a warning says which).",
    ),
    fmt: OutputFormat = FORMAT,
    engine: str = ENGINE,
    *,
    load: LoadOptions,
) -> None:
    """Fit a purchase model and Gamma-Gamma, then write per-customer predictions.

    Columns: customer_id, frequency, recency, T, monetary_value, probability_alive,
    expected_purchases, expected_spend, clv, alive_risk (high: P(alive) < 0.3, medium:
    < 0.7, low: otherwise; P(alive) only: `clv health`'s churn_risk also counts a falling
    purchase frequency). When a fit does not converge nothing is written and the command
    exits 1, unless --allow-unconverged.

    Example: fidelite clv predict -i tx.csv --horizon 52 --discount-rate 0.1 -o clv.csv
    """
    if horizon is None:  # one year in the unit the models count in
        horizon = 52.0 if time_unit.value == "week" else 365.0
    _check_number(horizon, "--horizon", fmt, strict=True)
    if horizon > max_horizon(time_unit.value):
        fail(horizon_limit_message("--horizon", horizon, time_unit.value), code="usage", fmt=fmt)
    _check_number(discount_rate, "--discount-rate", fmt)
    _check_number(penalizer, "--penalizer", fmt)
    end = _parse_day(calibration_end, "--calibration-end", fmt)
    options = replace(load, materialize=False)
    with _errors(fmt):
        _check_out(out)
        with _step(fmt, f"Summarising {input}"):
            ds = _open(input, engine, options)
            used_end, notes = _observed_to(ds, end, "--calibration-end")
            table = customer_summary(
                ds, observation_end=end, time_unit=time_unit.value, engine=ds.engine
            )
            _check_customers(table, used_end)
        with _step(fmt, f"Fitting {model.value} and gammagamma, predicting"):
            valued = value_customers(
                table,
                horizon=horizon,
                discount_rate=discount_rate,
                time_unit=time_unit.value,
                model=model.value,
                penalizer=penalizer,
            )
        preds, fit, spend_fit, population = (
            valued.predictions,
            valued.fit,
            valued.spend_fit,
            valued.population,
        )
        _check_converged(fit, spend_fit, out, allow_unconverged, fmt)
        assert preds.expected_spend is not None and preds.clv is not None
        theta = spend_fit.param_array()
        frequency = _column(table, "frequency")
        left_out = valued.spend_left_out
        if left_out is None:
            left_out = np.zeros(frequency.shape, dtype=np.bool_)
        infinite = ~gammagamma.spend_defined(theta, frequency) & ~left_out
        notes += _left_out_notes(table, left_out, predicted=True)
        notes += _infinite_spend_notes(theta, frequency, infinite)
        result = table.select(["customer_id", "frequency", "recency", "T", "monetary_value"])
        for name, values, explained in (
            ("probability_alive", preds.probability_alive, None),
            ("expected_purchases", preds.expected_purchases, None),
            ("expected_spend", preds.expected_spend, infinite | left_out),
            ("clv", preds.clv, infinite | left_out),
        ):
            missing = ~np.isfinite(values)
            unexplained = missing if explained is None else missing & ~explained
            if unexplained.any():
                notes.append(
                    f"{name}: no finite value for {int(unexplained.sum()):,} customers at the "
                    "fitted parameters (left empty)"
                )
            result = result.append_column(name, pa.array(values, mask=missing))
        alive = preds.probability_alive
        risk = pa.array(alive_risk(alive), mask=~np.isfinite(alive))
        result = result.append_column("alive_risk", risk)
        _write_table(result, out)
    _warn(
        convergence_warning(
            [fit, spend_fit],
            f"the predictions written to {out} are not estimates of anything "
            "(written because of --allow-unconverged)",
        )
    )
    population_fields = dict(population.__dict__)
    if gammagamma.infinite_mean_note(theta):  # explained by the spend notes: no generic note
        population_fields["mean_spend_per_transaction"] = None
        if infinite.any():
            population_fields["existing_customers_expected_value"] = None
    population_row, population_notes = _finite_or_null(population_fields, "population")
    notes += population_notes
    steps = monthly_steps(horizon, time_unit.value)
    summary = {
        "input": str(input),
        "calibration_end": used_end,
        "out": str(out),
        "customers": result.num_rows,
        "horizon": horizon,
        "time_unit": time_unit.value,
        "discount_rate": discount_rate,
        "discount_steps": steps,
        "discounting": _discounting(horizon, time_unit.value, discount_rate, steps),
        "purchase_model": fit.as_dict(),
        "spend_model": spend_fit.as_dict(),
        "population": population_row,
    }
    if fmt is OutputFormat.json:
        print_json({**summary, "notes": notes} if notes else summary)
    else:
        console.print(f"Wrote {result.num_rows:,} customers to {out}")
        console.print(
            f"From {input}, calibration end {used_end}; CLV {summary['discounting']}",
            highlight=False,
            markup=False,
        )
        print_rows([population_row], OutputFormat.table, title="Population expectations")
        _print_notes(notes)


def _discounting(horizon: float, unit: str, rate: float, steps: int) -> str:
    """How ``clv`` discounts, in words with the numbers used."""
    return (
        f"discounted per month: the {horizon:g}-{unit} horizon in {steps:,} equal step"
        f"{'s' if steps != 1 else ''} of {horizon / steps:.6g} {unit}s, the purchases "
        f"expected in each discounted at its end t by (1 + {rate:g})^(t / "
        f"{UNITS_PER_YEAR[unit]:.6g}), {rate:g} being the yearly rate"
    )


def _check_converged(
    fit: FitResult, spend_fit: FitResult, out: Path, allow: bool, fmt: OutputFormat
) -> None:
    """Refuse (exit 1, nothing written) when a fit did not converge, unless ``allow``.

    A file of per-customer numbers travels on to mailings and dashboards without the
    summary that flags the fits, so numbers that are not estimates are not written
    without being asked for."""
    refusal = convergence_warning(
        [fit, spend_fit],
        f"the predictions would not be estimates of anything, so nothing was written to "
        f"{out}; pass --allow-unconverged to write them anyway",
    )
    if refusal and not allow:
        fail(
            refusal,
            code="not_converged",
            fmt=fmt,
            purchase_model=fit.as_dict(),
            spend_model=spend_fit.as_dict(),
        )


def _left_out_notes(table: pa.Table, left_out: NDArray[np.bool_], *, predicted: bool) -> list[str]:
    """Which repeat customers Gamma-Gamma leaves out (mean repeat value not positive, e.g.
    zero-amount repeat days), by customer id; none when there are none.

    They do not stop the fit or the predictions: the model describes positive spends
    only, so they are not fitted and, in ``predict``, get no expected spend or CLV.
    """
    count = int(left_out.sum())
    if not count:
        return []
    rows = np.flatnonzero(left_out)
    ids = table.column("customer_id").take(pa.array(rows[:5])).to_pylist()
    values = _column(table, "monetary_value")[rows[:5]]
    shown = ", ".join(f"{cid} ({value:g})" for cid, value in zip(ids, values, strict=True))
    more = f" and {count - 5:,} more" if count > 5 else ""
    who = f"{count:,} customer{'s' if count != 1 else ''}"
    note = (
        f"gammagamma: left out {who} with repeat purchases whose mean repeat value "
        f"(monetary_value) is not positive: customer_id {shown}{more}; Gamma-Gamma "
        "describes positive spends (zero-amount repeat days, e.g. free items, have none)"
    )
    if predicted:
        note += (
            "; their expected_spend and clv are empty, and "
            "population.existing_customers_expected_value sums the other customers"
        )
    return [note]


def _infinite_spend_notes(
    theta: FloatArray, frequency: FloatArray, infinite: NDArray[np.bool_]
) -> list[str]:
    """What a spend fit with q <= 1 leaves out of ``predict``, and why (none when q > 1).

    The mean spend is infinite, and so is the expected spend of every customer with
    p x + q - 1 <= 0: those customers' expected_spend and clv are left empty (never the
    negative number the formula gives), and so are the population's mean spend and, when
    any customer is left empty, the base's total value; the other customers keep theirs.
    """
    heavy_tail = gammagamma.infinite_mean_note(theta)
    if heavy_tail is None:
        return []
    p, q, _ = theta
    population = "population.mean_spend_per_transaction"
    if not infinite.any():
        return [heavy_tail, f"{population}: null, infinite at q <= 1"]
    top = int(frequency[infinite].max())
    who = (
        "without a repeat purchase"
        if top == 0
        else f"with at most {top} repeat purchase{'s' if top != 1 else ''}"
    )
    left = int(infinite.sum())
    kept = int(infinite.size - left)
    return [
        heavy_tail,
        f"expected_spend, clv: empty for {left:,} customer{'s' if left != 1 else ''} {who}: "
        f"at q <= 1 their expected spend p(gamma + x m)/(p x + q - 1) is infinite "
        f"(p x + q - 1 <= 0 for x <= (1 - q)/p = {(1.0 - q) / p:.4g}); "
        f"the {kept:,} other{'s' if kept != 1 else ''} keep theirs",
        f"{population}, population.existing_customers_expected_value: null, infinite at q <= 1",
    ]


@app.command("validate")
@transaction_options
def validate_command(
    input: Path = INPUT,
    calibration_end: str = typer.Option(
        ..., "--calibration-end", help="Last day of the fitting period."
    ),
    observation_end: str | None = typer.Option(
        None, "--observation-end", help="Last day of the holdout (default: last day in the data)."
    ),
    model: PurchaseModelName = typer.Option(
        PurchaseModelName.bgnbd, "--model", "-m", help="bgnbd, paretonbd or mbgnbd."
    ),
    time_unit: TimeUnit = UNIT,
    penalizer: float = PENALIZER,
    fmt: OutputFormat = FORMAT,
    engine: str = ENGINE,
    *,
    load: LoadOptions,
) -> None:
    """Fit on the calibration period; compare predicted and actual holdout purchases.

    Example: fidelite clv validate -i tx.csv --calibration-end 1997-09-30 -f json
    """
    _check_number(penalizer, "--penalizer", fmt)
    cal = _parse_day(calibration_end, "--calibration-end", fmt)
    obs = _parse_day(observation_end, "--observation-end", fmt)
    options = replace(load, materialize=False)
    assert cal is not None
    with _errors(fmt):
        with _step(fmt, f"Summarising {input}"):
            ds = _open(input, engine, options)
            end, end_notes = _observed_to(ds, obs, "--observation-end")
            if cal >= end:
                which = "--observation-end" if obs is not None else "the last day in the data"
                fail(
                    f"--calibration-end {cal} leaves no holdout: it must be before the "
                    f"observation end {end} ({which})",
                    code="usage",
                    fmt=fmt,
                )
            table = calibration_holdout_summary(
                ds,
                calibration_end=cal,
                observation_end=end,
                time_unit=time_unit.value,
                engine=ds.engine,
            )
            _check_customers(table, cal)
        x, t = _column(table, "frequency_cal"), _column(table, "recency_cal")
        T, holdout = _column(table, "T_cal"), _column(table, "frequency_holdout")
        length = float(_column(table, "duration_holdout")[0]) if table.num_rows else 0.0
        with _step(fmt, f"Fitting {model.value}"):
            triples = compress(x, t, T, resolution=1.0 / DAYS[time_unit.value], keep_inverse=False)
            fit = purchase_model(model.value).fit(triples, penalizer=penalizer)
            report = holdout_report(fit, x, t, T, holdout, length)
    payload, notes = _finite_or_null(report.as_dict(), "")
    notes = end_notes + notes
    _warn(
        convergence_warning([fit], "its predicted holdout purchases are not estimates of anything")
    )
    context = {"input": str(input), "calibration_end": cal, "observation_end": end,
               "time_unit": time_unit.value}  # fmt: skip
    if fmt is OutputFormat.json:
        print_json(
            {**context, **payload, "fit": fit.as_dict(), **({"notes": notes} if notes else {})}
        )
        return
    rows = [
        {
            **g,
            "actual_mean": _rounded(g["actual_mean"], 3),
            "predicted_mean": _rounded(g["predicted_mean"], 3),
        }
        for g in payload["groups"]
    ]
    print_rows(
        rows,
        OutputFormat.table,
        title=f"Holdout of {length:g} {time_unit.value}s, after {cal} to {end}: {model.value}",
    )
    predicted, error = payload["predicted_total"], payload["mean_absolute_error"]
    console.print(
        f"actual {report.actual_total:,.0f} · "
        f"predicted {'n/a' if predicted is None else f'{predicted:,.1f}'} purchases · "
        f"mean absolute error {'n/a' if error is None else f'{error:.3f}'}"
    )
    _print_notes(notes)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _finite_or_null(payload: Any, where: str) -> tuple[Any, list[str]]:
    """``payload`` with every NaN or infinite number replaced by None, and a note per field.

    The models' closed forms can still fail at parameters on the edge of their space;
    a figure that is not a number is shown as null (JSON has no NaN) with a note naming
    it, never as NaN.
    """
    notes: list[str] = []

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {k: clean(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, float) and not math.isfinite(value):
            notes.append(
                f"{path}: not a finite number at the fitted parameters ({value}); shown as null"
            )
            return None
        return value

    return clean(payload, where), notes


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        console.print(f"note: {note}", highlight=False, markup=False)


@app.command("health")
@survey_options
@transaction_options
def health_command(
    input: Path = INPUT,
    surveys: Path | None = typer.Option(
        None, "--surveys", help="Survey answers (customer_id, timestamp, question, score)."
    ),
    support_cases: Path | None = typer.Option(
        None, "--support-cases", help="Support cases (customer_id, timestamp), one per row."
    ),
    window_days: int = typer.Option(
        90, "--window-days", help="Trend window: the last N days against the N before."
    ),
    fmt: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="table, json or csv.", is_eager=True
    ),
    engine: str = ENGINE,
    *,
    load: LoadOptions,
    survey_columns: AnswerColumns,
) -> None:
    """Health score (0-100) per customer, each input's contribution, and churn risk.

    Components: recency, frequency trend, spend trend, latest NPS answer (with
    --surveys), support cases (with --support-cases); a missing input drops out and the
    other weights are rescaled. Churn risk (high/medium/low) from BG/NBD P(alive) and
    the frequency trend; P(alive) and churn risk are empty, with a note saying why,
    when the model cannot be fitted or does not converge.

    Example: fidelite clv health -i tx.csv --surveys answers.csv --support-cases cases.csv
    """
    from fidelite.analytics.answers import load_answers
    from fidelite.analytics.engine import open_dataset
    from fidelite.analytics.health import customer_health
    from fidelite.analytics.support import load_support_cases
    from fidelite.cli.metrics import render, warn_dates, warn_survey_dates

    tz = load.timezone
    with _errors(fmt):
        with _step(fmt, f"Reading {input}"):
            _check_not_folder(input)
            ds = open_dataset(input, engine="spark" if engine == "spark" else "duckdb",
                              options=load)  # fmt: skip
            warn_dates(fmt, ds.loaded.date_warning)
            answers = (
                load_answers(surveys, columns=survey_columns, timezone=tz) if surveys else None
            )
            if answers is not None:
                warn_survey_dates(fmt, answers.source, answers.date_warning)
            support = load_support_cases(support_cases, timezone=tz) if support_cases else None
        with _step(fmt, "Scoring"):
            result = customer_health(ds, window_days=window_days, answers=answers,
                                     support=support)  # fmt: skip
    render(result, fmt)
