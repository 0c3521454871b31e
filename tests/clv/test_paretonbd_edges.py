"""Pareto/NBD at a customer who bought on the last day (t_x = T), at the extreme
parameters a one-customer fit runs to: A0 = F(t) - F(T) is exactly 0, so the
likelihood is the 'alive at T' term alone, with no NaN and no numpy warning; and where
scipy's 2F1 itself fails, the NaN stays (the optimiser steers away) without a warning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import gammaln
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.clv import paretonbd
from fidelite.clv.triples import compress

runner = CliRunner()
_register()


@pytest.mark.parametrize(
    "theta", [(2.3e7, 1e8, 2e-6, 1.6e5), (0.5, 1.0, 0.5, 2.0), (1e7, 1e6, 1e-3, 1e4)]
)
def test_log_likelihood_at_t_equal_T_is_the_alive_term(theta: tuple[float, ...]) -> None:
    r, alpha, s, beta = theta
    x, T = np.array([2.0]), np.array([60 / 7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll = paretonbd.log_likelihood(np.array(theta), x, T, T)
    alive = gammaln(r + 2) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive += -(r + 2) * np.log(alpha + T) - s * np.log(beta + T)
    assert ll == pytest.approx(alive, rel=1e-9)


def test_fit_one_customer_prints_no_numpy_warning(tmp_path: Path) -> None:
    data = tmp_path / "one.csv"
    data.write_text(
        "customer_id,timestamp,amount\n1,2024-01-01,10\n1,2024-02-01,20\n1,2024-03-01,30\n"
    )
    with warnings.catch_warnings():  # numpy's warnings reach stderr outside pytest
        warnings.simplefilter("error", RuntimeWarning)
        args = ["clv", "fit", "-i", str(data), "-m", "paretonbd", "-f", "json"]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["converged"] is False
    assert "RuntimeWarning" not in result.stderr
    assert result.stderr.startswith("Warning: the purchase model did not converge (paretonbd: ")


def test_fit_where_scipy_2f1_fails_keeps_nan_without_numpy_warning() -> None:
    # Four customers whose fit runs to r ~ 1.3e7, alpha at its bound, where scipy's 2F1
    # returns NaN: the likelihood is NaN there (the optimiser steers away), silently.
    x = np.array([0.0, 1.0, 2.0, 2.0])
    t = np.array([0.0, 58.0, 41.0, 40.0]) / 7
    T = np.array([47.0, 76.0, 69.0, 78.0]) / 7
    theta = np.array([13092895.754316838, 1e8, 3.250152575934526e-08, 0.21435345911761963])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert np.isnan(paretonbd.log_likelihood(theta, x, t, T)).all()
        fit = paretonbd.fit(compress(x, t, T, resolution=1 / 7))
    assert fit.converged is False and np.isfinite(fit.log_likelihood)
