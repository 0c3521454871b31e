"""Number options of `fidelite clv`: NaN, infinities and out-of-range values are usage
errors (exit 2) naming the option, refused before the input file is read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.clv import sbg
from fidelite.clv.predictions import predict_triples
from fidelite.clv.triples import compress

runner = CliRunner()
_register()

NON_FINITE = ["nan", "inf", "-inf"]
CASES = [
    *[("fit", "--penalizer", v, ">= 0") for v in [*NON_FINITE, "-1"]],
    *[("fit", "--period-length", v, "> 0") for v in [*NON_FINITE, "0", "-3"]],
    *[("predict", "--horizon", v, "> 0") for v in [*NON_FINITE, "0", "-52"]],
    *[("predict", "--discount-rate", v, ">= 0") for v in [*NON_FINITE, "-0.1"]],
    *[("predict", "--penalizer", v, ">= 0") for v in [*NON_FINITE, "-1"]],
    *[("validate", "--penalizer", v, ">= 0") for v in [*NON_FINITE, "-1"]],
]
EXTRA = {
    "fit": ["-m", "sbg"],
    "predict": ["--calibration-end", "1997-09-30"],
    "validate": ["--calibration-end", "1997-09-30"],
}


@pytest.mark.parametrize(("command", "option", "value", "bound"), CASES)
def test_number_option_refused_before_reading(
    tmp_path: Path, command: str, option: str, value: str, bound: str
) -> None:
    missing = tmp_path / "no-such-file.csv"  # reading it would be exit 1, bad_input
    out = tmp_path / "clv.csv"
    args = ["clv", command, "-i", str(missing), *EXTRA[command], f"{option}={value}"]
    args += ["-o", str(out)] if command == "predict" else []
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]  # valid JSON: no bare NaN
    assert error == {
        "code": "usage",
        "message": f"{option} must be a finite number {bound}, got {float(value)}",
    }
    assert list(tmp_path.iterdir()) == []


def test_library_refuses_non_finite_horizon_discount_and_penalizer() -> None:
    triples = compress(np.array([1.0]), np.array([2.0]), np.array([5.0]))
    data = sbg.ChurnData.from_survivors([100, 60, 45])
    fit = sbg.fit(data)
    with pytest.raises(ValueError, match="penalizer must be >= 0 and finite, got nan"):
        sbg.fit(data, penalizer=math.nan)
    with pytest.raises(ValueError, match="horizon must be a finite number > 0, got nan"):
        predict_triples(fit, triples, math.nan)
    with pytest.raises(ValueError, match="discount_rate must be a finite number >= 0"):
        predict_triples(fit, triples, 1.0, discount_rate=math.nan)
    with pytest.raises(ValueError, match="discount rate must be a finite number > 0"):
        sbg.discounted_expected_residual_lifetime(fit.param_array(), [1.0], math.nan)
