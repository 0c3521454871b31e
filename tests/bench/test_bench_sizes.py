"""Bench sizes that cannot be measured, and PostgreSQL URLs the bench cannot connect to,
are usage errors (exit 2) before any work; the engine bench's ledger-alone baseline
earns as many events as it reports."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tests.bench.support import assert_usage_error, bench_module

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["engine.py", "--events", "0"], "argument --events: 0 must be at least 1"),
        (["engine.py", "--events", "-5"], "argument --events: -5 must be at least 1"),
        (["engine.py", "--import-events", "0"], "argument --import-events: 0 must be at least 1"),
        (["engine.py", "--skip-rules", "--skip-sqlite"],
         "--skip-rules and --skip-sqlite without --pg measure nothing"),
        (["engine.py", "--skip-rules", "--skip-sqlite", "--pg", UNREACHABLE],
         f"--pg {UNREACHABLE}: cannot connect: "),
        (["ledger.py", "--ops", "0"], "argument --ops: 0 must be at least 1"),
        (["ledger.py", "--ops", "-3"], "argument --ops: -3 must be at least 1"),
        (["ledger.py", "--workers", "0"], "argument --workers: 0 must be at least 1"),
        (["ledger.py", "--pg", UNREACHABLE], f"--pg {UNREACHABLE}: cannot connect: "),
        (["clv.py", "--sizes", "0"], "argument --sizes: 0 must be at least 1"),
        (["webhooks.py", "--events", "2"], "argument --events: 2 must be at least 4"),
        (["webhooks.py", "--deliveries", "0"], "argument --deliveries: 0 must be at least 1"),
    ],
)  # fmt: skip
def test_a_size_or_url_that_cannot_be_measured_is_a_usage_error(
    args: list[str], message: str, tmp_path: Path
) -> None:
    assert_usage_error(args, message, tmp_path)


def test_size_types(monkeypatch: pytest.MonkeyPatch) -> None:
    options = bench_module("options", monkeypatch)
    assert options.positive_int("1") == 1
    assert options.non_negative_int("0") == 0
    assert options.positive_float("0.5") == 0.5
    assert options.non_negative_float("0") == 0.0
    assert options.int_at_least(4)("4") == 4
    for parse, bad in [
        (options.positive_int, "0"), (options.positive_int, "-1"), (options.positive_int, "1.5"),
        (options.non_negative_int, "-1"), (options.positive_float, "0"),
        (options.positive_float, "nan"), (options.non_negative_float, "-0.1"),
        (options.non_negative_float, "inf"), (options.int_at_least(4), "3"),
    ]:  # fmt: skip
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_ledger_alone_baseline_has_as_many_events_as_it_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = bench_module("engine", monkeypatch)
    rows = engine.synthetic_rows(100, members=1_000, seed=2)
    more = engine.baseline_rows(rows, 400, 1_000)
    assert len(more) == 400
    assert more[:100] == rows
    assert len({r["event_id"] for r in more}) == 400
    assert engine.baseline_rows(rows, 40, 1_000) == rows[:40]
