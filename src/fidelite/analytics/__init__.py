"""Loyalty analytics: metrics computed as relational queries over a transactions table.

Owns: loading transaction, subscription and survey files into one normalised shape
(:mod:`fidelite.analytics.io`), the engines that run queries (DuckDB embedded by
default, Apache Spark to scale out, :mod:`fidelite.analytics.engine`), the per-customer
summary used by the CLV models (:mod:`fidelite.analytics.summary`) and the metric
families (:mod:`fidelite.analytics.metrics`).

Invariants:

* every metric is written once, as an Ibis expression over the normalised
  ``transactions`` table, so DuckDB and Spark compute the same numbers;
* timestamps are converted to the business time zone when loaded; metrics only see
  local wall-clock times and local calendar days, so "which day did this customer buy"
  never depends on the engine or the machine's time zone;
* rates are percentages (0-100); every result carries its definition and parameters.
"""
