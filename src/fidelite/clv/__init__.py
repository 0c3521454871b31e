"""Customer lifetime value: buy-till-you-die models fitted by maximum likelihood.

Owns the models (one module each: ``bgnbd``, ``paretonbd``, ``mbgnbd``, ``gammagamma``,
``sbg``), their shared optimiser and diagnostics (``fitting``), the compression of
per-customer summaries into weighted unique triples (``triples``), and what is derived
from fitted models: predictions and discounted CLV (``predictions``), the
calibration/holdout report (``validation``), churn risk and the health score
(``health``), simulation from known parameters (``simulation``), and the words for a
fit that did not converge (``convergence``).

Input is the per-customer summary (frequency = repeat purchases, recency = time of the
last repeat purchase since the first, T = time since the first purchase, and the mean
repeat spend) computed by ``fidelite.analytics``; this package never reads transactions.
Time is in one unit throughout (days or weeks); fitted rate parameters are in that unit.
Requires the ``clv`` extra (numpy, scipy).
"""
