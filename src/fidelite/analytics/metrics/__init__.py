"""Metric families, one module per family, each defined once as Ibis expressions.

Every metric function takes a :class:`~fidelite.analytics.engine.Dataset` and its
parameters and returns a :class:`~fidelite.analytics.metrics.result.MetricResult`.
The engine does the heavy part (grouping millions of rows into a few counts); plain
Python then assembles rows from those integer counts (filling empty periods, dividing
into percentages), so both engines give identical rows.
"""
