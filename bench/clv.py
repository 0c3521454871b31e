"""Benchmark: BG/NBD + Gamma-Gamma fit and predictions at 1M and 10M customers.

Summaries are simulated from the CDNOW estimates (customers acquired over one year,
daily precision, time in weeks). fidelite fits on unique (x, t_x, T) triples; the
baseline is the ``lifetimes`` package (BetaGeoFitter / GammaGammaFitter, per customer,
as its documentation uses them) on the same data, run up to ``--baseline-max``
customers (it needs minutes and several GB beyond 1M). Prints seconds and ratios.

Run:  .venv/bin/python bench/clv.py --sizes 1000000 10000000
"""

from __future__ import annotations

import argparse
import gc
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fidelite.clv import bgnbd, gammagamma, simulation
from fidelite.clv.predictions import predict_customers
from fidelite.clv.triples import FloatArray, compress
from options import non_negative_int, positive_int

BG_TRUTH = np.array([0.243, 4.414, 0.793, 2.426])
GG_TRUTH = np.array([6.25, 3.74, 15.44])
HORIZON_WEEKS = 52.0


def timed(label: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn``; print wall and CPU seconds; return CPU seconds (robust on a shared box)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"  {label:<48} {wall:7.2f} s wall {cpu:7.2f} s cpu", flush=True)
    return cpu, out


def simulate(n: int, seed: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-customer (x, t_x, T, mean spend), generated in 1M chunks to bound memory."""
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, n, 1_000_000):
        size = min(1_000_000, n - start)
        T = rng.integers(1, 366, size).astype(np.float64) / 7.0
        x, t_x, _ = simulation.bgnbd(BG_TRUTH, T, rng)
        t_x = np.rint(t_x * 7.0) / 7.0  # daily precision, as a summary would give
        parts.append((x, t_x, T, simulation.spend(GG_TRUTH, x, rng)))
    x, t_x, T, m = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return x, t_x, T, m


def run_fidelite(x: FloatArray, t_x: FloatArray, T: FloatArray, m: FloatArray) -> dict[str, float]:
    print(" fidelite")
    out: dict[str, float] = {}
    out["compress"], triples = timed(
        "compress to unique triples", lambda: compress(x, t_x, T, resolution=1 / 7)
    )
    print(f"    {len(triples):,} unique triples")
    out["bgnbd"], bg = timed("BG/NBD fit", lambda: bgnbd.fit(triples))
    print(f"    {bg.params}  LL={bg.log_likelihood:.1f}  converged={bg.converged}")
    out["gg_data"], data = timed(
        "Gamma-Gamma data (repeat customers)", lambda: gammagamma.SpendData.build(x, m)
    )
    out["gammagamma"], gg = timed("Gamma-Gamma fit", lambda: gammagamma.fit(data))
    print(f"    {gg.params}  converged={gg.converged}")
    out["fit_total"] = out["compress"] + out["bgnbd"] + out["gg_data"] + out["gammagamma"]
    out["predict"], _ = timed(
        "predict all (P(alive), E[X(52)], spend, CLV)",
        lambda: predict_customers(
            bg, triples, HORIZON_WEEKS, spend_fit=gg, monetary_value=m, discount_rate=0.1
        ),
    )
    print(f"  {'fit total (cpu)':<48} {out['fit_total']:7.2f} s")
    return out


def run_lifetimes(x: FloatArray, t_x: FloatArray, T: FloatArray, m: FloatArray) -> dict[str, float]:
    import pandas as pd  # type: ignore[import-untyped]
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    warnings.simplefilter("ignore")
    print(" lifetimes (baseline)")
    out: dict[str, float] = {}
    frame = pd.DataFrame({"frequency": x, "recency": t_x, "T": T, "m": m})
    out["bgnbd"], bg = timed(
        "BetaGeoFitter.fit", lambda: BetaGeoFitter().fit(frame.frequency, frame.recency, frame["T"])
    )
    print(f"    {bg.params_.round(4).to_dict()}")
    repeat = frame[frame.frequency > 0]
    out["gammagamma"], gg = timed(
        "GammaGammaFitter.fit", lambda: GammaGammaFitter().fit(repeat.frequency, repeat.m)
    )
    out["fit_total"] = out["bgnbd"] + out["gammagamma"]

    def predict() -> None:
        bg.conditional_probability_alive(frame.frequency, frame.recency, frame["T"])
        bg.conditional_expected_number_of_purchases_up_to_time(
            HORIZON_WEEKS, frame.frequency, frame.recency, frame["T"]
        )
        gg.conditional_expected_average_profit(frame.frequency, frame.m)

    out["predict"], _ = timed("predict all (P(alive), E[X(52)], spend; no CLV)", predict)
    print(f"  {'fit total (cpu)':<48} {out['fit_total']:7.2f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[1_000_000, 10_000_000],
                        help="customers to simulate, one run per size")  # fmt: skip
    parser.add_argument("--baseline-max", type=non_negative_int, default=1_000_000,
                        help="largest size the lifetimes baseline runs on")  # fmt: skip
    args = parser.parse_args()
    for n in args.sizes:
        print(f"\n== {n:,} customers ==")
        x, t_x, T, m = simulate(n, seed=n)
        ours = run_fidelite(x, t_x, T, m)
        gc.collect()
        if n <= args.baseline_max:
            base = run_lifetimes(x, t_x, T, m)
            for key in ("bgnbd", "gammagamma", "fit_total", "predict"):
                ratio = (
                    f"{base[key] / ours[key]:8.1f}x"
                    if ours[key] > 0
                    else "     n/a (too fast to time)"
                )
                print(f"  cpu ratio lifetimes/fidelite {key:<18} {ratio}")
        else:
            print(f"  lifetimes baseline skipped above {args.baseline_max:,} customers")
        del x, t_x, T, m
        gc.collect()


if __name__ == "__main__":
    main()
