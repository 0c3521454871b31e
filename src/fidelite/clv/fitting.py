"""Maximum-likelihood fitting shared by every model: optimiser, diagnostics, standard errors.

Each model supplies its total weighted log-likelihood (and, where derived, its analytic
gradient) as a function of the natural parameters. This module:

* optimises over ``z = log(theta)`` with L-BFGS-B, so every parameter stays positive and
  the search is well scaled; bounds on ``z`` keep parameters in ``[LOWER, UPPER]`` where
  the log-space likelihoods stay finite;
* minimises ``-LL / W + penalizer * sum(theta**2)`` (``W`` = number of customers), i.e.
  the mean negative log-likelihood with an optional L2 penalty on the parameters as
  reported (alpha, beta in the caller's time unit), so tolerances mean the same at 2,000
  and 10,000,000 customers; lifetimes penalises its purchase models on time rescaled to
  the largest T (docs/clv.md), so the same penalizer gives other estimates there;
* reports the log-likelihood, the gradient norm at the optimum, which parameters sit on a
  bound, and standard errors from the inverse Hessian of ``-LL`` in natural parameters;
* never returns NaN: a non-finite likelihood raises :class:`FitError` saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

FloatArray = NDArray[np.float64]
LogLik = Callable[[FloatArray], float]
LogLikGrad = Callable[[FloatArray], tuple[float, FloatArray]]

LOWER = 1e-8
UPPER = 1e8
# A fit is called converged when the gradient of the mean objective (in log-parameters)
# is below this; at CDNOW scale it means |dLL/dlog(theta)| < 0.03 in total.
GRADIENT_TOLERANCE = 1e-5


class FitError(RuntimeError):
    """The likelihood could not be evaluated or maximised; the message says why."""


@dataclass(frozen=True)
class FitResult:
    """Outcome of a maximum-likelihood fit, with its convergence diagnostics."""

    model: str
    params: dict[str, float]
    log_likelihood: float
    std_errors: dict[str, float | None]
    n_customers: int
    n_unique: int
    converged: bool
    message: str
    iterations: int
    function_evaluations: int
    gradient_norm: float
    penalizer: float
    at_bound: tuple[str, ...] = field(default=())

    def param_array(self) -> FloatArray:
        """Parameters in the model's declared order."""
        return np.array(list(self.params.values()), dtype=np.float64)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view: ``{"model", "params", "log_likelihood", "std_errors", ...}``."""
        return {
            "model": self.model,
            "params": dict(self.params),
            "log_likelihood": self.log_likelihood,
            "std_errors": dict(self.std_errors),
            "n_customers": self.n_customers,
            "n_unique": self.n_unique,
            "converged": self.converged,
            "message": self.message,
            "iterations": self.iterations,
            "function_evaluations": self.function_evaluations,
            "gradient_norm": self.gradient_norm,
            "penalizer": self.penalizer,
            "at_bound": list(self.at_bound),
        }


@dataclass
class _Objective:
    """Mean penalised negative log-likelihood over ``z = log(theta)``."""

    loglik: LogLik
    loglik_grad: LogLikGrad | None
    total_weight: float
    penalizer: float
    evaluations: int = 0

    def __call__(self, z: FloatArray) -> tuple[float, FloatArray]:
        self.evaluations += 1
        theta = np.exp(z)
        if self.loglik_grad is not None:
            ll, grad_theta = self.loglik_grad(theta)
            grad_z = grad_theta * theta
        else:
            ll = self.loglik(theta)
            grad_z = _numeric_gradient_z(self.loglik, z)
        if not np.isfinite(ll) or not np.all(np.isfinite(grad_z)):
            # Steer the line search away; FitError is raised if the end point is like this.
            return 1e10, np.zeros_like(z)
        value = -ll / self.total_weight + self.penalizer * float(np.sum(theta**2))
        grad = -grad_z / self.total_weight + 2.0 * self.penalizer * theta**2
        return value, grad


def _numeric_gradient_z(loglik: LogLik, z: FloatArray, step: float = 1e-6) -> FloatArray:
    """Central differences of LL in log-parameters (used by models without analytic gradient)."""
    grad = np.empty_like(z)
    for i in range(z.shape[0]):
        up, down = z.copy(), z.copy()
        up[i] += step
        down[i] -= step
        grad[i] = (loglik(np.exp(up)) - loglik(np.exp(down))) / (2.0 * step)
    return grad


def maximize_likelihood(
    *,
    model: str,
    names: Sequence[str],
    loglik: LogLik,
    loglik_grad: LogLikGrad | None,
    start: FloatArray,
    n_customers: int,
    n_unique: int,
    total_weight: float,
    penalizer: float = 0.0,
    max_iterations: int = 3000,
    unidentified: str | None = None,
) -> FitResult:
    """Maximise a model's log-likelihood from ``start`` and collect diagnostics.

    ``unidentified``: what in the data leaves the parameters unidentified, if the model
    knows beforehand (e.g. no repeat purchase at all for a purchase-rate model); the fit
    then never reports convergence, whatever path the optimiser took (it stops on a
    flat ridge, where the result depends on the machine's rounding).

    Runs with one BLAS thread: a fit is thousands of small BLAS calls (dot products,
    L-BFGS-B updates) and a multi-threaded BLAS pool wakes and spins on each, which made
    fits up to 100x slower on a machine whose cores are busy.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _maximize(
            model=model,
            names=names,
            loglik=loglik,
            loglik_grad=loglik_grad,
            start=start,
            n_customers=n_customers,
            n_unique=n_unique,
            total_weight=total_weight,
            penalizer=penalizer,
            max_iterations=max_iterations,
            unidentified=unidentified,
        )


def _maximize(
    *,
    model: str,
    names: Sequence[str],
    loglik: LogLik,
    loglik_grad: LogLikGrad | None,
    start: FloatArray,
    n_customers: int,
    n_unique: int,
    total_weight: float,
    penalizer: float,
    max_iterations: int,
    unidentified: str | None,
) -> FitResult:
    if not (np.isfinite(penalizer) and penalizer >= 0):
        raise ValueError(f"{model}: penalizer must be >= 0 and finite, got {penalizer}")
    start = np.clip(np.asarray(start, dtype=np.float64), LOWER * 10, UPPER / 10)
    objective = _Objective(loglik, loglik_grad, total_weight, penalizer)
    ll0 = loglik(start)
    if not np.isfinite(ll0):
        raise FitError(
            f"{model}: the log-likelihood is not finite at the starting values "
            f"{dict(zip(names, start.tolist(), strict=True))}; check the summary for "
            "extreme values"
        )
    bounds = [(np.log(LOWER), np.log(UPPER))] * len(names)
    result = minimize(
        objective,
        np.log(start),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
    )
    theta = np.exp(result.x)
    ll = loglik(theta)
    if not np.isfinite(ll):
        raise FitError(
            f"{model}: the optimiser stopped where the log-likelihood is not finite "
            f"({result.message}); the data may be degenerate (e.g. no repeat purchases)"
        )
    _, grad = objective(result.x)
    at_bound = tuple(
        name
        for name, z in zip(names, result.x, strict=True)
        if z <= np.log(LOWER) + 1e-6 or z >= np.log(UPPER) - 1e-6
    )
    gradient_norm = float(np.max(np.abs(grad)))
    std_errors = standard_errors(
        names, theta, loglik, loglik_grad, penalizer=penalizer, total_weight=total_weight
    )
    flat = any(v is None for v in std_errors.values())
    converged = (
        gradient_norm < GRADIENT_TOLERANCE and not at_bound and not flat and unidentified is None
    )
    message = _message(model, names, theta, at_bound, flat, converged, str(result.message),
                       unidentified)  # fmt: skip
    return FitResult(
        model=model,
        params={n: float(v) for n, v in zip(names, theta, strict=True)},
        log_likelihood=float(ll),
        std_errors=std_errors,
        n_customers=n_customers,
        n_unique=n_unique,
        converged=converged,
        message=message,
        iterations=int(result.nit),
        function_evaluations=objective.evaluations,
        gradient_norm=gradient_norm,
        penalizer=penalizer,
        at_bound=at_bound,
    )


def _message(
    model: str,
    names: Sequence[str],
    theta: FloatArray,
    at_bound: tuple[str, ...],
    flat: bool,
    converged: bool,
    optimiser_message: str,
    unidentified: str | None = None,
) -> str:
    if unidentified or at_bound or flat:
        values = dict(zip(names, theta, strict=True))
        where = (
            unidentified
            if unidentified
            else f"parameter(s) {', '.join(f'{n}={values[n]:.3g}' for n in at_bound)} "
            f"reached the search bound [{LOWER:g}, {UPPER:g}]"
            if at_bound
            else "the likelihood is flat at the optimum (Hessian not positive definite)"
        )
        return (
            f"{model}: {where}: the data do not identify the parameters (for example no "
            "sign of churn, or too few repeat purchases); try a penalizer or another model"
        )
    if not converged:
        # L-BFGS-B's words may be a bare "ABNORMAL: " (its line search failed)
        reason = optimiser_message.strip().rstrip(":").strip() or "no reason given"
        return (
            f"{model}: the optimiser stopped before the gradient vanished (L-BFGS-B: "
            f"{reason}); estimates may be imprecise. Parameters running off on a flat "
            "likelihood (for example no sign of churn) often do this: try a penalizer or "
            "another model"
        )
    return "converged"


def no_repeat_purchases(frequency: FloatArray, weight: FloatArray) -> str | None:
    """Why a purchase-rate model (BG/NBD, Pareto/NBD...) cannot be identified from these
    customers, or None: with no repeat purchase at all, the likelihood rises without end
    as the purchase rate goes to zero."""
    if float(weight @ frequency) == 0.0:
        return "no customer made a repeat purchase"
    return None


def standard_errors(
    names: Sequence[str],
    theta: FloatArray,
    loglik: LogLik,
    loglik_grad: LogLikGrad | None,
    *,
    penalizer: float = 0.0,
    total_weight: float = 1.0,
) -> dict[str, float | None]:
    """Standard errors from the inverse Hessian of the (penalised) negative log-likelihood.

    The Hessian is taken in natural parameters by central differences of the analytic
    gradient when there is one (2k evaluations), else of the log-likelihood itself.
    Returns ``None`` for every parameter when the Hessian is not positive definite
    (a flat or boundary optimum: the parameters are not identified).
    """
    hessian = _hessian(theta, loglik, loglik_grad)
    k = theta.shape[0]
    hessian = hessian + np.eye(k) * 2.0 * penalizer * total_weight
    try:
        np.linalg.cholesky(hessian)
        cov = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return dict.fromkeys(names)
    diag = np.diag(cov)
    return {
        n: (float(np.sqrt(v)) if np.isfinite(v) and v > 0 else None)
        for n, v in zip(names, diag, strict=True)
    }


def _hessian(theta: FloatArray, loglik: LogLik, loglik_grad: LogLikGrad | None) -> FloatArray:
    """Hessian of ``-LL`` at ``theta`` (symmetrised)."""
    k = theta.shape[0]
    hess = np.empty((k, k))
    if loglik_grad is not None:
        for i in range(k):
            h = 1e-5 * theta[i]
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            hess[:, i] = -(loglik_grad(up)[1] - loglik_grad(down)[1]) / (2.0 * h)
    else:
        steps = 1e-4 * theta
        for i in range(k):
            for j in range(i, k):
                hess[i, j] = hess[j, i] = -_second_difference(loglik, theta, i, j, steps)
    return 0.5 * (hess + hess.T)


def _second_difference(loglik: LogLik, theta: FloatArray, i: int, j: int, h: FloatArray) -> float:
    def at(di: float, dj: float) -> float:
        point = theta.copy()
        point[i] += di * h[i]
        point[j] += dj * h[j]
        return loglik(point)

    return (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / float(4.0 * h[i] * h[j])
