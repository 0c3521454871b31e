"""fidelite: an open-source customer-loyalty platform.

Two jobs: run a loyalty program (members, points, tiers, rewards) with every point
accounted for in a double-entry ledger, and measure loyalty (retention, churn,
repurchase, CLV, NPS, RFM) from a business's own data.
"""

__version__ = "0.1.0"
