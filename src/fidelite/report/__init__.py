"""The loyalty report: every metric of a transactions file in one offline HTML page
(inline SVG charts, each explained for a non-specialist) plus ``report.json``."""
