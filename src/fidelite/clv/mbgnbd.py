"""MBG/NBD (modified BG/NBD) model of non-contractual repeat purchases.

Batislam, Denizel & Filiztekin (2007). As BG/NBD, but a customer may also drop out right
after the first purchase, so customers without repeat purchases are not all alive. While
active, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each purchase
(the first one included) they drop out with probability p ~ Beta(a, b). Parameters, in
order: ``r, alpha, a, b`` (alpha in the same time unit as recency and T).
Likelihood algebra: ``_betageo``.
"""

from __future__ import annotations

from fidelite.clv import _betageo

MODEL = "mbgnbd"
PARAMS = _betageo.PARAMS
_MODEL = _betageo.BetaGeoModel(MODEL, shift=1)

start_values = _MODEL.start_values
fit = _MODEL.fit
log_likelihood = _MODEL.log_likelihood
probability_alive = _MODEL.probability_alive
expected_purchases = _MODEL.expected_purchases
expected_purchases_if_alive = _MODEL.expected_purchases_if_alive
population_expected_purchases = _MODEL.population_expected_purchases
