"""Repurchase per product needs the product column: an error, not an empty result."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.repurchase import repurchase
from tests.cli.support import fidelite

TX = "customer_id,timestamp,amount\na,2024-01-01,5\na,2024-01-09,5\nb,2024-01-02,7"


def test_repurchase_per_product_without_product_column(write_csv: Callable[..., Path]) -> None:
    path = write_csv(TX)
    with pytest.raises(InputError) as err:
        repurchase(open_dataset(path), [30], per_product=True)
    assert (err.value.file, err.value.column) == (str(path), "product_id")
    assert "repurchase per product needs a 'product_id' column" in str(err.value)
    # the business-wide rate needs no product: a repurchased within 8 days, b did not
    rows = repurchase(open_dataset(path), [30]).rows
    assert (rows[0]["customers"], rows[0]["repurchased_30d"]) == (2, 1)


def test_repurchase_cli_per_product_without_product_column(
    write_csv: Callable[..., Path],
) -> None:
    proc = fidelite(
        "metrics", "repurchase", "-i", write_csv(TX), "--per-product", "-f", "json", ok=False
    )
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert (error["code"], error["column"]) == ("bad_input", "product_id")
    assert "rows" not in proc.stdout
