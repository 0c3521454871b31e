"""Benchmark: per-customer summary and the whole loyalty report on 10M transactions.

Generates 10,000,000 transactions for 1,000,000 customers (Parquet), then times in the
same run:

1. the baseline, lifetimes' ``summary_data_from_transaction_data`` (freq='D', with a
   monetary column) on the transactions already loaded in a pandas DataFrame; if
   lifetimes cannot be imported or fails on the installed pandas, a faithful pandas
   re-implementation of the same steps (:func:`lifetimes_like_summary`) is timed
   instead and named as such;
2. fidelite's :func:`~fidelite.analytics.summary.customer_summary` from the Parquet
   file (loading and validation included);
3. the whole ``fidelite report`` (every metric, HTML and JSON) from the Parquet file;

and prints the ratio baseline / fidelite and the peak memory of each step (measured in
a child process per step so peaks do not mix).

Run:  .venv/bin/python bench/analytics.py [--rows N] [--customers N] [--skip-baseline]
      [--skip-report] [--data FILE] [--keep]

The generated Parquet file (224 MB at the default size) and the report are written to a
temporary directory that is removed at the end, unless ``--keep`` is given (the
directory is then printed); a ``--data`` file is the user's and is never removed. A step
whose process fails ends the bench with its exit code and the step named.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue as queues
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from options import positive_int

START = np.datetime64("2023-01-01T00:00:00", "s")
SPAN_SECONDS = 2 * 365 * 86400


def generate(path: Path, rows: int, customers: int, seed: int = 7) -> None:
    """Write ``rows`` transactions for ``customers`` customers to Parquet.

    Every customer has at least one purchase; purchase times are uniform over two
    years; amounts are log-normal (median about 30); about 2 % of rows are refunds.
    """
    rng = np.random.default_rng(seed)
    ids = np.concatenate([np.arange(customers), rng.integers(0, customers, rows - customers)])
    rng.shuffle(ids)
    seconds = rng.integers(0, SPAN_SECONDS, rows)
    ts = START + seconds.astype("timedelta64[s]")
    amount = np.round(rng.lognormal(3.4, 0.6, rows), 2)
    refund = rng.random(rows) < 0.02
    product = rng.integers(0, 200, rows)
    table = pa.table(
        {
            "customer_id": pa.array(np.char.add("C", ids.astype("U7"))),
            "timestamp": pa.array(ts.astype("datetime64[us]")),
            "amount": pa.array(amount),
            "order_id": pa.array(np.char.add("O", np.arange(rows).astype("U8"))),
            "product_id": pa.array(np.char.add("P", product.astype("U3"))),
            "category": pa.array(np.char.add("K", (product % 12).astype("U2"))),
            "refund": pa.array(refund),
        }
    )
    pq.write_table(table, path, row_group_size=1_000_000)


def lifetimes_like_summary(tx: pd.DataFrame) -> pd.DataFrame:
    """lifetimes' summary_data_from_transaction_data (freq='D', monetary), step for step.

    Same operations as lifetimes 0.11.3: sort, to_period('D'), truncate at the
    observation end, sum per (day, customer), mark each customer's first period,
    min/max/count per customer, mean of the non-first periods.
    """
    end = tx["timestamp"].max().to_period("D").to_timestamp()
    t = tx[["customer_id", "timestamp", "amount"]].sort_values(["customer_id", "timestamp"])
    t = t.set_index("timestamp").to_period("D").to_timestamp()
    t = t.loc[t.index <= end].reset_index()
    period = t.groupby(["timestamp", "customer_id"], sort=False, as_index=False).sum()
    period["first"] = False
    first = period.groupby("customer_id", sort=True, as_index=False).head(1).index
    period.loc[first, "first"] = True
    customers = period.groupby("customer_id", sort=False)["timestamp"].agg(["min", "max", "count"])
    customers["frequency"] = customers["count"] - 1
    customers["T"] = (end - customers["min"]) / np.timedelta64(1, "D")
    customers["recency"] = (customers["max"] - customers["min"]) / np.timedelta64(1, "D")
    period.loc[first, "amount"] = np.nan
    customers["monetary_value"] = period.groupby("customer_id")["amount"].mean().fillna(0)
    return customers[["frequency", "recency", "T", "monetary_value"]].astype(float)


def _baseline(path: str) -> dict[str, Any]:
    tx = pd.read_parquet(path, columns=["customer_id", "timestamp", "amount", "refund"])
    # lifetimes has no refund notion: give it the same purchases fidelite counts.
    tx = tx.loc[~tx["refund"], ["customer_id", "timestamp", "amount"]]
    name = "lifetimes.summary_data_from_transaction_data"
    try:
        from lifetimes.utils import summary_data_from_transaction_data

        t0 = time.perf_counter()
        out = summary_data_from_transaction_data(
            tx, "customer_id", "timestamp", monetary_value_col="amount"
        )
    except Exception as exc:  # lifetimes is unmaintained; report why it was replaced
        name = f"pandas re-implementation of lifetimes (lifetimes failed: {type(exc).__name__})"
        t0 = time.perf_counter()
        out = lifetimes_like_summary(tx)
    return {"name": name, "seconds": time.perf_counter() - t0, "customers": len(out)}


def _fidelite_summary(path: str) -> dict[str, Any]:
    from fidelite.analytics.summary import customer_summary

    t0 = time.perf_counter()
    out = customer_summary(path)
    return {"seconds": time.perf_counter() - t0, "customers": out.num_rows}


def _fidelite_report(path: str, out_dir: str) -> dict[str, Any]:
    from fidelite.report.build import build_report

    out = Path(out_dir)
    t0 = time.perf_counter()
    build_report(path, out)
    return {"seconds": time.perf_counter() - t0, "html_bytes": (out / "report.html").stat().st_size}


def peak_rss_mib() -> float:
    """This process's own peak resident memory, in MiB.

    Linux's ``VmHWM`` belongs to the process's address space, which ``exec`` replaces.
    ``ru_maxrss`` does not start again at ``exec``: a child started right after the
    parent generated the data (1.4 GB in memory) reported the parent's peak as its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(fn: Callable[[str], dict[str, Any]], path: str, queue: Any) -> None:
    result = fn(path)
    result["peak_rss_mib"] = peak_rss_mib()
    queue.put(result)


class StepFailed(Exception):
    """A step's process ended without a result (its traceback is on stderr)."""


def run_isolated(fn: Callable[[str], dict[str, Any]], path: str) -> dict[str, Any]:
    """Run one step in a fresh process so its peak memory is its own.

    Waits for the result while the process lives; a process that ends without one
    (an exception, killed, out of memory) raises :class:`StepFailed` with its exit code
    instead of waiting for ever."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, path, queue))
    proc.start()
    try:
        while True:
            try:
                result: dict[str, Any] = queue.get(timeout=0.5)
                break
            except queues.Empty:
                if proc.is_alive():
                    continue
            try:  # ended: a result put just before the end may still be in transit
                result = queue.get(timeout=2)
                break
            except queues.Empty:
                name = getattr(fn, "func", fn).__name__.lstrip("_")
                raise StepFailed(
                    f"step {name} failed: its process ended with exit code {proc.exitcode}"
                    " and no result"
                ) from None
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=10_000_000,
                        help="transactions to generate (at least --customers)")  # fmt: skip
    parser.add_argument("--customers", type=positive_int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None,
                        help="reuse this Parquet file, or generate it there if it does not exist "
                        "(either way it is kept)")  # fmt: skip
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (generated Parquet file, report) "
                        "instead of removing it at the end; its path is printed")  # fmt: skip
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-report", action="store_true")
    args = parser.parse_args(argv)
    if args.rows < args.customers:
        parser.error(
            f"--rows {args.rows} is less than --customers {args.customers}: "
            "every customer has at least one transaction"
        )
    work = Path(tempfile.mkdtemp(prefix="fidelite-bench-"))
    try:
        return measure(args, work)
    except StepFailed as exc:
        print(f"analytics bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> int:
    path = args.data or work / "tx.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, args.rows, args.customers)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s -> {path}")
    results: dict[str, Any] = {"rows": args.rows, "customers": args.customers}
    if not args.skip_baseline:
        results["baseline"] = run_isolated(_baseline, str(path))
    results["summary"] = run_isolated(_fidelite_summary, str(path))
    if not args.skip_report:
        report = partial(_fidelite_report, out_dir=str(work / "report"))
        results["report"] = run_isolated(report, str(path))
    if "baseline" in results:
        ratio = results["baseline"]["seconds"] / results["summary"]["seconds"]
        results["summary_speedup"] = round(ratio, 1)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
