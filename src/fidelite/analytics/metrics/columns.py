"""Optional transaction columns a metric cannot do without.

The loader accepts files without ``product_id``, ``coupon_code`` and the other optional
columns (they load as nulls), so a metric that reads one must ask for it: computed on
nulls it would give 0 % or no rows, which reads like a finding instead of a mistake.
"""

from __future__ import annotations

from fidelite.analytics.engine import Dataset
from fidelite.analytics.errors import InputError


def require(ds: Dataset, column: str, what: str = "this metric") -> str:
    """``column`` when the input has it; else one error naming the file and the column."""
    if column not in ds.loaded.present:
        raise InputError(f"{what} needs a '{column}' column", file=ds.loaded.source, column=column)
    return column
