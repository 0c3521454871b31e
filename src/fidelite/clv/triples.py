"""Per-customer (frequency, recency, T) summaries compressed to unique triples with weights.

Buy-till-you-die likelihoods depend on a customer only through the triple
(x = repeat purchases, t_x = time of the last repeat purchase, T = age at the end of
the calibration period). Once time is bucketed (days, or days expressed in weeks),
millions of customers share a few hundred thousand triples, so every model fits on
the unique triples with their counts as weights: the cost of one likelihood
evaluation no longer grows with the number of customers.

Invariants of :class:`Triples`: all arrays have the same length; ``frequency`` holds
non-negative whole numbers; ``0 <= recency <= T``; ``recency == 0`` when
``frequency == 0``; ``weight > 0``. ``inverse`` (when present) maps each original
customer to its row, so per-triple predictions scatter back with ``values[inverse]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Rows per block when streaming over customers: blocks of 8 MB arrays are recycled by the
# allocator, where whole-column temporaries at 10M rows are fresh pages each time.
_CHUNK = 1 << 20

# Up to this many possible keys, counting with np.bincount (two arrays of this size,
# ~270 MB at most) is several times faster than sorting; above it, np.unique sorts.
_BINCOUNT_MAX_KEYS = 1 << 24


class SummaryError(ValueError):
    """A per-customer summary violates the model's data invariants (message names the row)."""


@dataclass(frozen=True)
class Triples:
    """Unique (frequency, recency, T) rows with the number of customers sharing each."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    weight: FloatArray
    inverse: IntArray | None = None

    @property
    def n_customers(self) -> int:
        """Number of customers represented (sum of weights, rounded)."""
        return round(float(self.weight.sum()))

    def __len__(self) -> int:
        return int(self.frequency.shape[0])


def weighted_counts(index: IntArray, weights: FloatArray, size: int) -> FloatArray:
    """Sum of ``weights`` per group ``index`` (0..size-1), as float64."""
    return np.asarray(np.bincount(index, weights=weights, minlength=size), dtype=np.float64)


def _as_float(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise SummaryError(f"{name}: expected a one-dimensional array, got shape {arr.shape}")
    return arr


def _first_bad(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_summary(frequency: FloatArray, recency: FloatArray, T: FloatArray) -> None:
    """Raise :class:`SummaryError` naming the first row and field that breaks an invariant."""
    n = frequency.shape[0]
    if recency.shape[0] != n or T.shape[0] != n:
        raise SummaryError(
            f"frequency, recency and T must have the same length "
            f"(got {n}, {recency.shape[0]}, {T.shape[0]})"
        )
    checks: list[tuple[NDArray[np.bool_], str]] = [
        (~np.isfinite(frequency), "frequency is not a finite number"),
        (~np.isfinite(recency), "recency is not a finite number"),
        (~np.isfinite(T), "T is not a finite number"),
        (frequency < 0, "frequency is negative"),
        (frequency != np.floor(frequency), "frequency is not a whole number"),
        (recency < 0, "recency is negative"),
        (recency > T, "T is smaller than recency"),
        ((frequency == 0) & (recency != 0), "recency must be 0 when frequency is 0"),
    ]
    for mask, what in checks:
        if mask.any():
            row = _first_bad(mask)
            raise SummaryError(
                f"row {row}: {what} (frequency={frequency[row]}, recency={recency[row]}, "
                f"T={T[row]})"
            )


def _group_keys(key: IntArray, n_keys: int) -> tuple[IntArray, IntArray, IntArray]:
    """Return (unique keys, counts, inverse) using bincount when the key space is small."""
    if n_keys <= min(_BINCOUNT_MAX_KEYS, 4 * key.shape[0]):
        counts_all = np.bincount(key, minlength=n_keys)
        uniq = np.flatnonzero(counts_all).astype(np.int64)
        rank = np.zeros(n_keys, dtype=np.int64)  # calloc: untouched pages cost nothing
        rank[uniq] = np.arange(uniq.shape[0])
        return uniq, counts_all[uniq].astype(np.int64), rank[key]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return uniq.astype(np.int64), counts.astype(np.int64), inverse.astype(np.int64)


def compress(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    resolution: float | None = None,
    weights: ArrayLike | None = None,
    keep_inverse: bool = True,
) -> Triples:
    """Group customers into unique (frequency, recency, T) triples.

    ``resolution`` is the time bucket in the model's time unit (e.g. ``1/7`` for daily
    precision with time in weeks). With a resolution, recency and T are snapped to the
    nearest multiple of it and grouped through integer keys (fast at 10M rows); without
    one, exact float values are grouped. ``weights`` (default 1 per row) lets callers pass
    already-aggregated rows.
    """
    x = _as_float(frequency, "frequency")
    t = _as_float(recency, "recency")
    big_t = _as_float(T, "T")
    w = np.ones_like(x) if weights is None else _as_float(weights, "weights")
    validate_summary(x, t, big_t)
    if w.shape[0] != x.shape[0] or (w <= 0).any() or not np.isfinite(w).all():
        raise SummaryError("weights must be finite, positive and one per row")
    if x.shape[0] == 0:
        raise SummaryError("the summary has no customers")
    if resolution is not None:
        return _compress_bucketed(x, t, big_t, w, resolution, keep_inverse, weights is None)
    stacked = np.stack([x, t, big_t], axis=1)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    weight = weighted_counts(inverse, w, uniq.shape[0])
    return Triples(
        frequency=np.ascontiguousarray(uniq[:, 0]),
        recency=np.ascontiguousarray(uniq[:, 1]),
        T=np.ascontiguousarray(uniq[:, 2]),
        weight=weight,
        inverse=inverse if keep_inverse else None,
    )


def _compress_bucketed(
    x: FloatArray,
    t: FloatArray,
    big_t: FloatArray,
    w: FloatArray,
    resolution: float,
    keep_inverse: bool,
    unit_weights: bool,
) -> Triples:
    if not resolution > 0:
        raise SummaryError(f"resolution must be positive, got {resolution}")
    # Only the x values present get a slot, and (t, T) with t <= T are numbered along a
    # triangle, so the key space stays a few million even for 10M customers. In-place
    # integer arithmetic (no division) keeps this at a few passes over the data.
    present_x = np.flatnonzero(np.bincount(x.astype(np.int64)))
    x_rank = np.zeros(int(present_x[-1]) + 1, dtype=np.int64)
    x_rank[present_x] = np.arange(present_x.shape[0])
    scale = 1.0 / resolution
    n_t = int(np.rint(big_t.max() * scale)) + 1
    n_pairs = n_t * (n_t + 1) // 2
    key = np.empty(x.shape[0], dtype=np.int64)
    for lo in range(0, x.shape[0], _CHUNK):
        hi = lo + _CHUNK
        big_ti = np.rint(big_t[lo:hi] * scale).astype(np.int64)
        part = big_ti + 1
        part *= big_ti
        part >>= 1
        part += np.rint(t[lo:hi] * scale).astype(np.int64)
        part += x_rank[x[lo:hi].astype(np.int64)] * n_pairs
        key[lo:hi] = part
    uniq, counts, inverse = _group_keys(key, present_x.shape[0] * n_pairs)
    del key
    weight = (
        counts.astype(np.float64) if unit_weights else weighted_counts(inverse, w, uniq.shape[0])
    )
    pair = uniq % n_pairs
    xu = present_x[uniq // n_pairs]
    big_tu = ((np.sqrt(8.0 * pair + 1.0) - 1.0) / 2.0).astype(np.int64)
    big_tu -= big_tu * (big_tu + 1) // 2 > pair  # guard against sqrt rounding up
    big_tu += (big_tu + 1) * (big_tu + 2) // 2 <= pair  # ... or down
    tu = pair - big_tu * (big_tu + 1) // 2
    return Triples(
        frequency=xu.astype(np.float64),
        recency=np.asarray(tu * resolution, dtype=np.float64),
        T=np.asarray(big_tu * resolution, dtype=np.float64),
        weight=weight,
        inverse=inverse if keep_inverse else None,
    )
