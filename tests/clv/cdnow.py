"""The CDNOW 1/10th sample as prepared in Fader, Hardie & Lee (2005).

Read from the data file shipped in the ``lifetimes`` package folder (its code is not
imported: it breaks with current pandas). Preparation, as in the paper and in Fader &
Hardie's "Creating an RFM summary" note: purchases on the same day form one transaction
(their values summed); calibration period 1997-01-01 .. 1997-09-30 (39 weeks);
x = repeat transactions in calibration, t_x and T in weeks at daily precision
(days / 7), m = mean value of the repeat transactions.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from fidelite.clv.triples import FloatArray

CALIBRATION_END = date(1997, 9, 30)


@dataclass(frozen=True)
class Cdnow:
    """Per-customer calibration summary, customers ordered by their sample ID."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    m: FloatArray
    holdout_x: FloatArray  # transactions (distinct days) after the calibration end


def datasets_dir() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the lifetimes package (test dependency) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


def _parse_day(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def load_cdnow() -> Cdnow:
    by_customer: dict[int, dict[date, float]] = defaultdict(dict)
    with (datasets_dir() / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _, sample_id, day, _, value = line.split()
            days = by_customer[int(sample_id)]
            when = _parse_day(day)
            days[when] = days.get(when, 0.0) + float(value)
    rows = []
    for cid in sorted(by_customer):
        days = by_customer[cid]
        ordered = sorted(days)
        first = ordered[0]
        calibration = [d for d in ordered if d <= CALIBRATION_END]
        repeat_values = [days[d] for d in calibration[1:]]
        rows.append(
            (
                len(calibration) - 1,
                (calibration[-1] - first).days / 7.0,
                (CALIBRATION_END - first).days / 7.0,
                float(np.mean(repeat_values)) if repeat_values else 0.0,
                len(ordered) - len(calibration),
            )
        )
    table = np.array(rows, dtype=np.float64)
    return Cdnow(*(np.ascontiguousarray(table[:, i]) for i in range(5)))
