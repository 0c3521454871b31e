"""What docs/clv.md states about the penalty, the year in weeks and `fit -f json`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.clv import bgnbd
from fidelite.clv.predictions import UNITS_PER_YEAR
from fidelite.clv.triples import Triples, compress
from tests.clv.cdnow import Cdnow

DOCS = (Path(__file__).parents[2] / "docs" / "clv.md").read_text()
runner = CliRunner()
_register()


def _rounded(params: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 3) for k, v in params.items()}


def test_penalizer_differs_from_lifetimes_by_its_time_rescaling(
    cdnow: Cdnow, cdnow_triples: Triples
) -> None:
    ours = bgnbd.fit(cdnow_triples, penalizer=0.01)
    assert _rounded(ours.params) == {"r": 0.158, "alpha": 1.529, "a": 0.335, "b": 0.678}
    # lifetimes' BetaGeoFitter(penalizer_coef=0.01) on the CDNOW summary fits on time
    # divided by the largest T: r 0.243, alpha 4.432, a 0.286, b 0.659.
    scale = 1.0 / float(cdnow.T.max())
    rescaled = compress(cdnow.x, cdnow.t_x * scale, cdnow.T * scale, resolution=scale / 7)
    theirs = dict(bgnbd.fit(rescaled, penalizer=0.01).params)
    theirs["alpha"] /= scale
    lifetimes = {"r": 0.2429, "alpha": 4.4324, "a": 0.2856, "b": 0.6585}  # its 4 decimals
    assert all(abs(theirs[k] - v) < 2e-4 for k, v in lifetimes.items()), theirs
    assert "r 0.158, alpha 1.529, a 0.335, b 0.678" in DOCS
    assert "r 0.243, alpha 4.432, a 0.286, b 0.659" in DOCS


def test_year_in_weeks_is_365_25_over_7() -> None:
    assert UNITS_PER_YEAR == {"day": 365.25, "week": 365.25 / 7.0}
    assert "365.25 / 7 = 52.1786 weeks" in DOCS and "52.18" not in DOCS


def test_fit_json_keys_are_the_documented_ones(tmp_path: Path) -> None:
    data = tmp_path / "tx.csv"
    rows = [f"c{i},2024-0{1 + i % 3}-1{i % 9},{5 + i}" for i in range(40)]
    rows += [f"c{i},2024-05-0{1 + i % 9},{7 + i}" for i in range(0, 40, 3)]
    data.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    result = runner.invoke(app, ["clv", "fit", "-i", str(data), "-m", "bgnbd", "-f", "json"])
    assert result.exit_code == 0, result.output
    keys = set(json.loads(result.stdout)) - {"notes"}
    sentence = re.search(r"`fit -f json` prints `\{(.*?)\}`", DOCS, re.S)
    assert sentence is not None
    documented = set(re.findall(r'"(\w+)"', sentence.group(1)))
    assert keys == documented
    assert "function_evaluations" in documented
    assert np.isfinite(json.loads(result.stdout)["function_evaluations"])
