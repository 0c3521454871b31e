"""What a fit that did not converge says, in words an analyst can act on."""

from __future__ import annotations

import numpy as np

from fidelite.clv.fitting import _message


def test_a_bare_abnormal_from_the_optimiser_is_not_printed_as_an_empty_reason() -> None:
    """L-BFGS-B reports a failed line search as "ABNORMAL: " with nothing after it; the
    message read "(ABNORMAL: )"."""
    message = _message(
        "bgnbd", ["r", "alpha", "a", "b"], np.array([1.0, 2.0, 3.0, 4.0]), (), False, False,
        "ABNORMAL: ",
    )  # fmt: skip
    assert message == (
        "bgnbd: the optimiser stopped before the gradient vanished (L-BFGS-B: ABNORMAL); "
        "estimates may be imprecise. Parameters running off on a flat likelihood (for "
        "example no sign of churn) often do this: try a penalizer or another model"
    )
    empty = _message("sbg", ["alpha", "beta"], np.array([1.0, 2.0]), (), False, False, "")
    assert "(L-BFGS-B: no reason given)" in empty


def test_a_converged_fit_says_so() -> None:
    assert _message("sbg", ["alpha", "beta"], np.array([1.0, 2.0]), (), False, True, "") == (
        "converged"
    )
