"""The per-customer summary, and the fits on it, do not depend on the rows' order.

A DOUBLE sum of 2-decimal amounts depends on the order it adds them in (0.1 + 0.2 +
0.3 is not 0.3 + 0.2 + 0.1 in binary), and DuckDB's threads add a group's rows in
whatever order they happen to meet them: the same file then gave monetary values a
bit apart from run to run, and a Gamma-Gamma fit on a flat likelihood turned that
last bit into a different q. Money is summed exactly, so the same transactions give
the same bits in any order and on every run.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from fidelite.analytics.errors import InputError
from fidelite.analytics.summary import calibration_holdout_summary, customer_summary
from fidelite.clv import gammagamma
from fidelite.clv.valuation import column

START = date(2024, 1, 1)


def _rows(seed: int = 11) -> list[str]:
    """40 customers, 5 to 15 purchase days each, 3 to 20 rows a day of 0.01-999.99."""
    rng = random.Random(seed)
    rows = []
    for c in range(40):
        for _ in range(rng.randint(5, 15)):
            day = START + timedelta(days=rng.randrange(300))
            for _ in range(rng.randint(3, 20)):
                rows.append(f"c{c:02d},{day.isoformat()},{rng.randrange(1, 100_000) / 100:.2f}")
    return rows


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    return path


def _orders(tmp_path: Path, count: int) -> list[Path]:
    """The same transactions in ``count`` files, each in another row order."""
    rows = _rows()
    files = []
    for i in range(count):
        shuffled = rows[:]
        random.Random(i).shuffle(shuffled)
        files.append(_write(tmp_path / f"tx{i}.csv", shuffled))
    return files


def _as_bits(table: pa.Table) -> list[tuple[object, ...]]:
    """Every value, floats by their exact bits (``==`` on floats would hide nothing here,
    but a repr shows which customer differs)."""
    return [tuple(float(v).hex() if isinstance(v, float) else v for v in r.values())
            for r in table.to_pylist()]  # fmt: skip


def test_summary_is_bit_identical_whatever_the_row_order(tmp_path: Path) -> None:
    summaries = [_as_bits(customer_summary(f)) for f in _orders(tmp_path, 4)]
    assert all(s == summaries[0] for s in summaries[1:])
    # the exact decimal mean: customer c00's repeat days, summed as cents
    rows = [r.split(",") for r in _rows() if r.startswith("c00,")]
    by_day: dict[str, int] = {}
    for _, day, amount in rows:
        by_day[day] = by_day.get(day, 0) + round(float(amount) * 100)
    days = sorted(by_day)
    repeat_cents = sum(by_day[d] for d in days[1:])
    c00 = customer_summary(tmp_path / "tx0.csv").to_pylist()[0]
    assert c00["customer_id"] == "c00" and c00["frequency"] == len(days) - 1
    assert c00["monetary_value"] == (repeat_cents / 100) / (len(days) - 1)


def test_summary_is_bit_identical_run_after_run(tmp_path: Path) -> None:
    path = _write(tmp_path / "tx.csv", _rows() * 3)  # more rows a day, more threads' work
    first = _as_bits(customer_summary(path))
    for _ in range(4):
        assert _as_bits(customer_summary(path)) == first


def test_holdout_summary_is_bit_identical_whatever_the_row_order(tmp_path: Path) -> None:
    cal = START + timedelta(days=150)
    tables = [
        _as_bits(calibration_holdout_summary(f, calibration_end=cal)) for f in _orders(tmp_path, 3)
    ]
    assert all(t == tables[0] for t in tables[1:])


def test_spend_fit_is_identical_whatever_the_row_order(tmp_path: Path) -> None:
    fits = []
    for path in _orders(tmp_path, 4):
        summary = customer_summary(path, time_unit="week")
        spend = gammagamma.SpendData.build(
            column(summary, "frequency"), column(summary, "monetary_value")
        )
        fits.append(gammagamma.fit(spend).as_dict())
    assert all(f == fits[0] for f in fits[1:])


def test_a_day_total_too_large_for_money_is_named_as_bad_input(tmp_path: Path) -> None:
    path = _write(tmp_path / "tx.csv", ["a,2024-01-01,1e33", "a,2024-01-05,10"])
    with pytest.raises(InputError) as caught:
        customer_summary(path)
    assert str(caught.value) == (
        f"{path}, column 'amount': a customer's purchases on one day add up to 10^32 or "
        "more, too large to be summed as money (six decimals, 38 digits)"
    )
