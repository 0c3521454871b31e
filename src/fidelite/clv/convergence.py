"""The words for a fit that did not converge, shared by ``fidelite clv`` and the report.

A fit that ran but did not converge (``converged`` false: a parameter at its search
bound, a flat likelihood, an optimiser that stopped early) gives figures that are not
estimates of anything: every customer may get the same CLV. Wherever such figures are
shown or written, the reader is told in the same words, built here: which model (its
role and name), why and what to try (the fit's ``message`` says both, see
:func:`fidelite.clv.fitting.maximize_likelihood`).
"""

from __future__ import annotations

from collections.abc import Iterable

from fidelite.clv.fitting import FitResult

# What each model predicts, as the report and the CLI name it.
ROLES = {
    "bgnbd": "purchase",
    "paretonbd": "purchase",
    "mbgnbd": "purchase",
    "gammagamma": "spend",
    "sbg": "churn",
}


def not_converged(role: str, message: str) -> str:
    """``the purchase model did not converge (<message>)``.

    ``message`` is the fit's own (``bgnbd: parameter(s) b=1e+08 reached the search
    bound ...; try a penalizer or another model``): it names the model, why, and what to
    try, so the sentence needs nothing more."""
    return f"the {role} model did not converge ({message})"


def unconverged_reasons(fits: Iterable[FitResult]) -> list[str]:
    """One :func:`not_converged` sentence per fit that did not converge, in order."""
    return [not_converged(ROLES.get(f.model, f.model), f.message) for f in fits if not f.converged]


def convergence_warning(fits: Iterable[FitResult], consequence: str) -> str | None:
    """The reasons joined, then what follows for the figures (``consequence``); None
    when every fit converged."""
    reasons = unconverged_reasons(fits)
    return f"{'; '.join(reasons)}; {consequence}" if reasons else None
