"""Build the loyalty report: one self-contained ``report.html`` plus ``report.json``.

The HTML embeds its charts as inline SVG (no script, no network): it opens offline
and can be mailed as one file. ``report.json`` holds every number shown, each metric
in the ``{metric, definition, parameters, rows}`` shape of ``fidelite metrics``; its
``warnings`` list says what a reader must know first (dates that also read month first,
a CLV fit that did not converge, whose numbers are kept but not charted), shown at the
top of the HTML too (:mod:`fidelite.report.notices`).
With ``--segment-col`` or ``--segments`` a table gives each customer segment's repeat
purchase rate and monthly retention (``segments``, :mod:`fidelite.report.segments`).
The product section (multi-product buyers, basket affinity) appears when the
transactions have a product column, the survey sections with ``--surveys``, recurring
revenue with ``--subscriptions``, the program KPIs and engagement when the input is a
program database (:mod:`fidelite.report.program`), even one whose program has no
purchase yet (the purchase-based sections are then left out, each with why). Whatever
the report leaves out (per-customer rows such as RFM scores, metrics needing another
input) is listed with its reason in ``not_included`` (:mod:`fidelite.report.coverage`).

Both files are written to temporary names in the output folder and renamed only once
both are complete (``report.html`` first, ``report.json`` last), an older report being
kept aside under a hidden backup name until both are in; on any failure (a full disk, a
directory in the way, a file that cannot be replaced) the older files are put back, the
temporaries deleted and a folder this run created removed again, so the folder is left
as it was.
"""

from __future__ import annotations

import calendar
import errno
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path
from typing import Any

from fidelite.analytics.answers import LoadedAnswers
from fidelite.analytics.engine import Dataset, EngineName, open_dataset
from fidelite.analytics.io import LoadedTransactions, LoadOptions, Source
from fidelite.analytics.metrics import clv, cohorts, pareto, repeat, repurchase, retention, rfm
from fidelite.analytics.metrics.result import MetricResult
from fidelite.analytics.programdb import program_source_name
from fidelite.analytics.subscriptions import LoadedSubscriptions
from fidelite.report import (
    coverage,
    feedback,
    lifetime,
    notices,
    products,
    program,
    svg,
    tables,
)
from fidelite.report import segments as per_segment
from fidelite.report.numbers import MISSING, money, number, rate

REPURCHASE_DAYS = (30, 60, 90, 180, 360)
Step = Callable[[str], None]


def build_report(
    source: Source | LoadedTransactions | None,
    out_dir: Path,
    *,
    engine: EngineName = "duckdb",
    options: LoadOptions | None = None,
    on_step: Step | None = None,
    surveys: Source | LoadedAnswers | None = None,
    subscriptions: Source | LoadedSubscriptions | None = None,
    program_db: tuple[str, str] | None = None,
    lifespan_years: float | None = None,
) -> dict[str, Any]:
    """Compute every metric, write ``report.html`` and ``report.json``; return the JSON.

    ``surveys`` (answers) adds the NPS trend, ``subscriptions`` the recurring revenue,
    ``program_db`` (``(url, program id)`` of the program database ``source`` was read
    from) the program's KPIs and engagement; ``source`` is ``None`` when that program has
    no purchase: the report then holds the program's sections only, each purchase-based
    one named in ``not_included`` with why. ``lifespan_years`` is the simple CLV's known
    lifespan (``fidelite metrics clv --lifespan-years``); without it, it comes from churn.
    Every input is read and validated before anything is written.
    """
    step = on_step or (lambda _label: None)
    left_out: dict[str, str] = {}
    if source is None:  # a program database whose program has no purchase
        if program_db is None:
            raise ValueError("the report needs transactions or a program database")
        opts = options or LoadOptions()
        timezone = opts.timezone
        data = _without_purchases(program_db, opts, engine)
        left_out.update(coverage.without_purchases(program_db[1], segmented=_segmented(opts)))
    else:
        step("Loading transactions")
        ds = open_dataset(source, engine=engine, options=options)
        timezone = ds.loaded.timezone
        data = compute(ds, step, lifespan_years)
    found, missing = program.compute(program_db, timezone, step)
    data["metrics"].update(found)
    left_out.update(missing)
    answers = None if surveys is None else feedback.loaded_answers(surveys, timezone)
    subs = None if subscriptions is None else feedback.loaded_subscriptions(subscriptions, timezone)
    if answers is not None:
        step("Computing NPS trend")
        data["surveys"] = feedback.compute_surveys(answers, engine, timezone)
    if subs is not None:
        step("Computing recurring revenue")
        data["revenue"] = feedback.compute_revenue(subs, engine, timezone)
    # dates read one of two ways come first: every monthly figure depends on them
    data["warnings"] = notices.date_warnings(data["input"], answers, subs) + data["warnings"]
    data["not_included"] = coverage.not_included(
        data, database=program_db is not None, left_out=left_out
    )
    step("Writing the report")
    payload = json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False)
    html = render_html(data)  # both rendered before anything is written
    write_files(out_dir, {"report.html": html, "report.json": payload})
    result: dict[str, Any] = json.loads(payload)
    return result


def _without_purchases(
    program_db: tuple[str, str], options: LoadOptions, engine: EngineName = "duckdb"
) -> dict[str, Any]:
    """The report's frame for a program without any purchase: no purchase-based metric
    (``not_included`` says why), a warning saying so first. ``input.engine`` is the
    engine asked for, as for a program with purchases: the survey and subscription
    sections are computed on it (the program's own KPIs are read with DuckDB in either
    case, as ``fidelite metrics program-kpis`` reads them)."""
    url, program_id = program_db
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": {
            "input": options.source_name or program_source_name(url, program_id),
            "rows": 0,
            "timezone": options.timezone,
            "engine": engine,
        },
        "warnings": [
            f"program '{program_id}' has no purchases: the report holds only the "
            "program's own figures (program KPIs, and engagement when it processed "
            "events); not_included says why each purchase-based section is left out"
        ],
        "metrics": {},
    }


def _segmented(options: LoadOptions) -> bool:
    """Whether the per-segment section was asked for (--segment-col or --segments)."""
    return options.segment_column is not None or options.segments_file is not None


def compute(ds: Dataset, step: Step, lifespan_years: float | None = None) -> dict[str, Any]:
    """Every number of the report, keyed by section."""
    results: dict[str, MetricResult] = {}
    jobs: dict[str, Callable[[], MetricResult]] = {
        "retention": lambda: retention.retention(ds, "month"),
        "new_vs_returning": lambda: retention.new_vs_returning(ds, "month"),
        "repeat_rate": lambda: repeat.repeat_rate(ds),
        "repurchase": lambda: repurchase.repurchase(ds, REPURCHASE_DAYS),
        "cohorts": lambda: cohorts.cohorts(ds, "month", "n-day"),
        "unbounded_cohorts": lambda: cohorts.cohorts(ds, "month", "unbounded"),
        "pareto": lambda: pareto.pareto(ds, 20.0, 100),
        "clv": lambda: clv.simple_clv(ds, lifespan_years),
        **products.jobs(ds),  # with a product column only
    }
    for name, job in jobs.items():
        step(f"Computing {name.replace('_', ' ')}")
        results[name] = job()
    step("Computing RFM segments")
    segments, curve = rfm.segment_sizes(ds), pareto.curve(ds)
    step("Fitting the CLV models")
    lifetime_value = lifetime.compute(ds)
    by_segment = per_segment.compute(ds, step)  # with --segment-col or --segments only
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": ds.describe(),
        # What a reader of the numbers must know first (a CLV fit that did not converge).
        "warnings": lifetime.warnings(lifetime_value),
        "metrics": {k: v.to_dict() for k, v in results.items()},
        "incomplete_month": incomplete_month(ds.last_day()),
        "rfm_segments": segments,
        "pareto_curve": curve,
        "clv_models": lifetime_value,
        **({"segments": by_segment} if by_segment is not None else {}),
    }


def incomplete_month(last_day: date) -> dict[str, Any] | None:
    """The month the data stop in, when they stop before its last day (``None`` when
    the last day in the data ends its month).

    A month with part of its days counts fewer buyers than a whole one: its retention
    reads too low, its churn too high, its cohort cells too low. The report keeps its
    figures (they are what the data hold) and marks them: ``report.json``'s
    ``incomplete_month`` (this), a shaded band on the retention chart and a dashed
    outline on the heat map's cells of that month."""
    days = calendar.monthrange(last_day.year, last_day.month)[1]
    if last_day.day == days:
        return None
    month = f"{last_day.year:04d}-{last_day.month:02d}"
    return {
        "month": month,
        "data_end": last_day.isoformat(),
        "days_with_data": last_day.day,
        "days_in_month": days,
        "marked_in": ["retention", "new_vs_returning", "cohorts", "unbounded_cohorts"],
        "note": (
            f"the data end on {last_day.isoformat()}, day {last_day.day} of the "
            f"{days} days of {month}: that month's figures (monthly retention and churn, "
            "new and returning customers, and the cohort cells of that month) count only "
            "the customers who bought by then, so its retention reads too low and its "
            "churn too high until the month is complete; compare complete months only"
        ),
    }


def render_html(data: dict[str, Any]) -> str:
    """The report page: a section per chart, each saying what it shows and how to read it."""
    m = data["metrics"]
    if "retention" not in m:  # a program database without any purchase
        sections = [_no_purchases_section(data)]
    else:
        sections = [
            _headline(data),
            _retention_section(m["retention"], data.get("incomplete_month")),
            _cohort_section(m["cohorts"], data.get("incomplete_month")),
            _curves_section(m["unbounded_cohorts"], data.get("incomplete_month")),
            _repurchase_section(m["repurchase"]),
            _segments_section(data["rfm_segments"]),
            _pareto_section(m["pareto"], data["pareto_curve"]),
            lifetime.section(data["clv_models"], _section),
        ]
    if "program_kpis" in m:
        sections.append(program.section(m, _section, data.get("not_included", {})))
    if "segments" in data:
        sections.append(per_segment.section(data["segments"], _section))
    if "basket_affinity" in m:
        sections.append(products.section(m, _section))
    if "surveys" in data:
        sections.append(feedback.nps_section(data["surveys"], _section))
        sections.append(feedback.scores_section(data["surveys"], _section))
    if "revenue" in data:
        sections.append(feedback.revenue_section(data["revenue"], _section))
    inp = data["input"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Loyalty report</title><style>{STYLE}</style></head><body><h1>Loyalty report</h1>"
        f"<p class='def'>Input: {escape(str(inp['input']))} &middot; {inp['rows']:,} rows "
        f"&middot; time zone {escape(inp['timezone'])}{_date_format(inp)} "
        f"&middot; engine {inp['engine']} &middot; generated {escape(data['generated_at'])}</p>"
        + notices.warnings_box(data["warnings"])
        + "".join(sections)
        + "</body></html>"
    )


# The page's look: readable from a phone (390 px) to a desktop, and on paper. Wide
# tables and charts scroll sideways inside their own box instead of widening the page;
# a chart shrinks with the page down to a floor (svg._svg) under which its text would be
# too small to read. Printed, the folded tables and their "show" lines are left out and
# a chart is not cut across two pages.
STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "max-width:960px;margin:2em auto;color:#111;padding:0 1em;line-height:1.45}"
    "section{margin:2.5em 0}h2{border-bottom:1px solid #ddd;margin-top:1.2em}"
    "h2+p{margin-top:.6em}"
    ".how{color:#374151;font-size:.95em}.def{color:#4b5563;font-size:.85em}"
    "table{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%;"
    "margin:.8em 0}"
    "caption{text-align:left;font-weight:600;padding:.2em 0 .4em;color:#374151}"
    "td,th{padding:3px 10px;text-align:right}td{white-space:nowrap}"
    "td:only-of-type{white-space:normal}"
    "tbody th{text-align:left;font-weight:600}thead th{border-bottom:1px solid #d1d5db}"
    "tbody tr:nth-child(even){background:#f9fafb}"
    ".chart{overflow-x:auto;margin:1em 0}.chart svg{display:block;width:100%;height:auto}"
    "@media (max-width:580px){.chart.wide::after{content:'\\2190  swipe sideways to see "
    "the whole chart  \\2192';display:block;font-size:.8em;color:#4b5563;"
    "position:sticky;left:0}}"
    "details.values{margin:.5em 0}summary{cursor:pointer;color:#1d4ed8}"
    ".warnings{border-left:4px solid #b45309;background:#fffbeb;padding:.1em 1em}"
    ".meta{color:#4b5563;font-size:.85em}"
    "@media (max-width:720px){body{margin:1em auto;padding:0 .75em}h1{font-size:1.6em}"
    "h2{font-size:1.3em}td,th{padding:2px 6px}table{font-size:.9em}}"
    "@media print{body{max-width:none;margin:0;padding:0;font-size:11pt}"
    "details.values{display:none}.chart{overflow:visible;break-inside:avoid}"
    ".chart svg{min-width:0!important}h2{break-after:avoid}"
    "table{display:table;break-inside:auto;font-size:8.5pt}td,th{padding:1px 4px}"
    "td{white-space:normal;overflow-wrap:anywhere}"
    "tr{break-inside:avoid}}"
)


def _date_format(inp: dict[str, Any]) -> str:
    """How the transactions' dates were read, for the Input line ("" for a program
    without purchases, whose input states none)."""
    fmt = inp.get("date_format")
    return "" if fmt is None else f" &middot; dates read as {escape(fmt)}"


def _section(title: str, what: str, how: str, body: str, definition: str) -> str:
    return (
        f"<section><h2>{escape(title)}</h2><p><b>What it shows.</b> {escape(what)}</p>"
        f"<p class='how'><b>How to read it.</b> {escape(how)}</p>{body}"
        f"<p class='def'>Definition: {escape(definition)}</p></section>"
    )


def _no_purchases_section(data: dict[str, Any]) -> str:
    """In place of the key figures and the purchase-based charts: why they are missing."""
    why = data["not_included"].get("retention", "no purchases")
    return (
        "<section><h2>Key figures</h2>"
        f"<p><b>No purchases to measure:</b> {escape(why)}.</p>"
        "<p class='how'>The key figures, retention, cohorts, repurchase, RFM segments, "
        "Pareto curve and customer lifetime value are computed from purchases and left "
        "out; report.json's not_included lists each with this reason. The program's own "
        "figures follow.</p></section>"
    )


def _headline(data: dict[str, Any]) -> str:
    """The key figures, each defined under the table in the words of its metric."""
    m = data["metrics"]
    repeat_row = m["repeat_rate"]["rows"][0] if m["repeat_rate"]["rows"] else {}
    clv_row = m["clv"]["rows"][0]
    par = m["pareto"]["summary"]
    facts = [
        ("Customers", f"{par['customers']:,}"),
        ("Repeat purchase rate", rate(repeat_row.get("repeat_purchase_rate"))),
        ("Revenue share of the top 20 % of customers", rate(par["top_revenue_share"])),
        ("Average order value", money(clv_row["average_order_value"])),
        ("Simple CLV", money(clv_row["clv"])),
        ("Customer lifespan of the simple CLV", _lifespan(clv_row)),
    ]
    definitions = [
        ("Customers", "customers with at least one purchase (refund lines alone make none)."),
        ("Repeat purchase rate", m["repeat_rate"]["definition"]),
        ("Revenue share of the top 20 %", m["pareto"]["definition"]),
        ("Average order value, simple CLV and lifespan", m["clv"]["definition"] + SIMPLE_CLV),
    ]
    if "multi_product" in m:
        multi = m["multi_product"]["rows"][0]["multi_product_rate"]
        facts.append(("Repeat customers who bought more than one product", rate(multi)))
        definitions.append(("Multi-product buyers", m["multi_product"]["definition"]))
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    note = m["clv"].get("summary", {}).get("note")  # why the simple CLV is undefined
    why = f"<p><b>Why the simple CLV is n/a:</b> {escape(note)}.</p>" if note else ""
    defined = why + "".join(
        f"<p class='def'><b>{escape(name)}:</b> {escape(text)}</p>" for name, text in definitions
    )
    table = (
        "<table><caption>Key figures of the whole file</caption><thead><tr>"
        '<th scope="col">figure</th><th scope="col">value</th></tr></thead>'
        f"<tbody>{cells}</tbody></table>"
    )
    return f"<section><h2>Key figures</h2>{table}{defined}</section>"


# The simple CLV of the key figures is not the CLV section's model: say so beside it.
SIMPLE_CLV = (
    " This simple CLV is a different figure from the model-based CLV of the section "
    "'Customer lifetime value' (BG/NBD and Gamma-Gamma, next 52 weeks, discounted), whose "
    "mean need not match it."
)


def _lifespan(row: dict[str, Any]) -> str:
    """The lifespan the simple CLV used, and where it came from."""
    years = row["lifespan_years"]
    if years is None:
        return MISSING
    shown = f"{number(years, 2)} years ({number(12 * years, 1)} months"
    if row["lifespan_source"] == "given":
        return f"{shown}, given)"
    return f"{shown}, from a monthly churn of {rate(row['monthly_churn_rate'])})"


def _retention_section(result: dict[str, Any], partial: dict[str, Any] | None = None) -> str:
    rows = result["rows"]  # a month without a rate stays on the axis, as a gap
    periods = [r["period"] for r in rows]
    shade = periods.index(partial["month"]) if partial and partial["month"] in periods else None
    chart = svg.line_chart(
        [r["period"] for r in rows],
        [
            ("retention %", [r["retention_rate"] for r in rows]),
            ("churn %", [r["churn_rate"] for r in rows]),
        ],
        x_label="month",
        y_label="% of last month's customers",
        title="Monthly retention and churn",
        shade_from=shade,
        shade_label="" if partial is None else _partial_label(partial),
    ) + tables.folded(
        "Monthly retention and churn (n/a: no customers the month before)",
        ["month", "retention", "churn"],
        [[r["period"], rate(r["retention_rate"]), rate(r["churn_rate"])] for r in rows],
    )
    drawn = not all(r["retention_rate"] is None for r in rows)
    if not drawn:
        chart = _no_data(
            NO_PURCHASES
            if not rows
            else "no month of the data follows a month with customers (retention compares "
            "each month's customers with the month before's)"
        )
    return _section(
        "Monthly retention and churn",
        "Of the customers who bought last month, the share who bought again this month "
        "(retention) and the share who did not (churn).",
        "The two lines add up to 100 %. A rising retention line (solid blue, square points) "
        "means more customers keep coming back month after month; churn is the dashed red "
        "line with triangles." + _partial_how(partial if shade is not None and drawn else None),
        chart,
        result["definition"],
    )


def _partial_label(partial: dict[str, Any]) -> str:
    """The words above the shaded month in progress."""
    return f"{partial['month']} incomplete: data end {partial['data_end']}"


def _partial_how(partial: dict[str, Any] | None) -> str:
    """What the shaded month means, for the section's "how to read it" ("" when the data
    end with a whole month)."""
    if partial is None:
        return ""
    return (
        f" The shaded month, {partial['month']}, is not over in the data (they end on "
        f"{partial['data_end']}, day {partial['days_with_data']} of "
        f"{partial['days_in_month']}): fewer of last month's customers have had the "
        "time to come back, so its retention reads too low and its churn too high. "
        "Compare complete months only."
    )


def _month_number(period: str) -> int:
    """``"2024-03"`` -> months since year 0, to add months after a cohort's month."""
    year, month = period.split("-")[:2]
    return int(year) * 12 + int(month) - 1


def _cohort_section(result: dict[str, Any], partial: dict[str, Any] | None = None) -> str:
    rows = result["rows"][-18:]
    cols = [k for k in (rows[0] if rows else {}) if k.startswith("month_")][:18]
    in_progress = None if partial is None else _month_number(partial["month"])
    # month 0 is 100 % by definition (the first purchase itself): never too low
    marked = [
        [
            in_progress is not None
            and c != "month_0"
            and _month_number(r["cohort"]) + int(c.removeprefix("month_")) == in_progress
            for c in cols
        ]
        for r in rows
    ]
    chart = svg.heat_map(
        [f"{r['cohort']} ({r['size']:,})" for r in rows],
        [c.removeprefix("month_") for c in cols],
        [[r[c] for c in cols] for r in rows],
        x_label="months after the first purchase",
        y_label="first-purchase month (customers)",
        title="Cohort heat map",
        partial=marked,
        partial_note=(
            ""
            if partial is None
            else f"{partial['month']}, not over in the data (they end on "
            f"{partial['data_end']}): lower than it will be"
        ),
    ) + tables.folded(
        "% of each first-purchase month's customers who bought N months later (blank: not "
        "observed yet)",
        ["first-purchase month (customers)", *(f"month {c.removeprefix('month_')}" for c in cols)],
        [
            [f"{r['cohort']} ({r['size']:,})", *("" if r[c] is None else rate(r[c]) for c in cols)]
            for r in rows
        ],
    )
    if not rows:
        chart = _no_data(NO_PURCHASES)
    return _section(
        "Cohort heat map",
        "Customers grouped by the month of their first purchase (one row per group); each "
        "cell is the % of the group who bought N months later. The number after each month "
        "is how many customers the group has." + _cohorts_left_out(result["rows"], rows, cols),
        "Read a row from left to right to follow one group over time; darker cells mean more "
        "customers came back. Compare rows to see whether newer customers stay better."
        + _partial_cells(partial if any(any(r) for r in marked) else None),
        chart,
        result["definition"],
    )


def _partial_cells(partial: dict[str, Any] | None) -> str:
    """What the heat map's dashed cells mean ("" when it has none)."""
    if partial is None:
        return ""
    return (
        f" Cells with a dashed outline fall in {partial['month']}, which the data cover "
        f"only up to {partial['data_end']}: they will rise as the month completes."
    )


def _cohorts_left_out(
    every: list[dict[str, Any]], shown: list[dict[str, Any]], cols: list[str]
) -> str:
    """What the heat map leaves out ("" when nothing): the earlier first-purchase
    months beyond its 18 rows, the later months after the first purchase beyond its 18
    columns; report.json has them all."""
    months = sum(k.startswith("month_") for k in (every[0] if every else {}))
    cut = []
    if len(every) > len(shown):
        earlier = len(every) - len(shown)
        cut.append(
            f"the {earlier:,} earliest first-purchase month{'s' if earlier != 1 else ''} "
            f"({every[0]['cohort']} to {every[earlier - 1]['cohort']})"
        )
    if months > len(cols):
        cut.append(f"months {len(cols)} to {months - 1} after the first purchase")
    if not cut:
        return ""
    return (
        f" For reading, the map shows the {len(shown):,} most recent first-purchase months "
        f"and months 0 to {len(cols) - 1}: left out here are {' and '.join(cut)}; "
        "report.json's metrics.cohorts has every one."
    )


def _curves_section(result: dict[str, Any], partial: dict[str, Any] | None = None) -> str:
    rows = result["rows"][-6:]
    cols = [k for k in (rows[0] if rows else {}) if k.startswith("month_")][:24]
    chart = svg.line_chart(
        [c.removeprefix("month_") for c in cols],
        [(r["cohort"], [r[c] for c in cols]) for r in rows],
        x_label="months after the first purchase",
        y_label="% of cohort still buying",
        title="Retention curves",
    ) + tables.folded(
        "% of each first-purchase month's customers still buying N months later (blank: "
        "not observed yet)",
        ["months after the first purchase", *(r["cohort"] for r in rows)],
        [
            [c.removeprefix("month_"), *("" if r[c] is None else rate(r[c]) for r in rows)]
            for c in cols
        ],
    )
    if not rows:
        chart = _no_data(NO_PURCHASES)
    return _section(
        "Retention curves",
        "For the six most recent first-purchase months: the % of customers who bought in "
        "month N or any later month.",
        "Each line starts at 100 % and falls as customers stop buying; a flatter line means "
        "a more loyal group."
        + (
            ""
            if partial is None or not rows
            else f" The last point after month 0 of each line falls in {partial['month']}, "
            f"which the data cover only up to {partial['data_end']}: it may still rise (month "
            "0 is 100 % by definition)."
        ),
        chart,
        result["definition"],
    )


def _repurchase_section(result: dict[str, Any]) -> str:
    """The six most recent cohorts over the windows, the x axis to scale in days; a rate
    whose window the data do not cover yet (``complete_Dd`` false) is drawn faded with a
    hollow point: provisional, not measured."""
    rows = result["rows"][-6:]
    days = result["parameters"]["days"]
    chart = svg.line_chart(
        [f"{d} d" for d in days],
        [(r["cohort"], [r[f"repurchase_rate_{d}d"] for d in days]) for r in rows],
        x_label="days after the first order",
        y_label="% who ordered again",
        x_at=[float(d) for d in days],
        provisional=[[not r[f"complete_{d}d"] for d in days] for r in rows],
        title="Repurchase curves",
    ) + tables.folded(
        "% of each first-purchase month's new customers who ordered again within D days",
        ["first-purchase month", *(f"{d} days" for d in days)],
        [[r["cohort"], *(_repurchase_cell(r, d) for d in days)] for r in rows],
    )
    if not rows:
        chart = _no_data(NO_PURCHASES)
    return _section(
        "Repurchase curves",
        "For the six most recent first-purchase months: the % of new customers who ordered "
        f"again within {_days_in_words(days)} days of their first order.",
        "Higher is better. The days are to scale. Faded lines and hollow points are "
        "provisional: the data do not yet reach that many days past the end of the month, "
        "so the rate may still rise (complete_Dd false in report.json)."
        + _provisional_note(rows, days),
        chart,
        result["definition"],
    )


def _repurchase_cell(row: dict[str, Any], d: int) -> str:
    """The rate within ``d`` days, said provisional while its window is open."""
    shown = rate(row[f"repurchase_rate_{d}d"])
    return shown if row[f"complete_{d}d"] else f"{shown} (provisional)"


def _days_in_words(days: list[int]) -> str:
    """``[30, 60, 90]`` -> ``30, 60 and 90``."""
    return ", ".join(map(str, days[:-1])) + (" and " if len(days) > 1 else "") + str(days[-1])


def _provisional_note(rows: list[dict[str, Any]], days: list[int]) -> str:
    """How many of the charted rates are provisional ("" when none is)."""
    provisional = sum(not r[f"complete_{d}d"] for r in rows for d in days)
    if not provisional:
        return ""
    return f" Here {provisional} of the {len(rows) * len(days)} points are provisional."


def _segments_section(segments: list[dict[str, Any]]) -> str:
    chart = svg.bar_chart(
        [(s["segment"], float(s["customers"])) for s in segments],
        x_label="customers",
        title="Customers per RFM segment",
        y_label="segment",
    )
    if not segments:
        chart = _no_data(NO_PURCHASES)
    return _section(
        "RFM segments",
        "Customers grouped by how recently and how often they buy (RFM: recency, "
        "frequency, monetary value; each customer gets a recency and a frequency score "
        "from 1 to 5, and the segment follows from the two).",
        "Champions and loyal customers are the ones to thank; at risk and cannot lose them "
        "are the ones to win back before they become hibernating or lost.",
        chart,
        _rfm_definition(),
    )


def _rfm_definition() -> str:
    """The segment rules in words, written from the grid the segments are computed with."""

    def scores(low: int, high: int) -> str:
        return str(low) if low == high else f"{low}-{high}"

    rules = "; ".join(
        f"{name}: recency {scores(*r)} and frequency {scores(*f)}" for name, r, f in rfm.SEGMENTS
    )
    return (
        "Every customer gets two scores from 1 to 5. Recency: customers are ranked by the "
        "days since their last purchase and split into five equal groups, 5 for the most "
        "recent buyers, 1 for those who have not bought for longest. Frequency: the same "
        "with their number of orders, 5 for those who ordered most. Customers with the same "
        "value get the same score, the lowest their group reaches: a value every customer "
        "shares scores 1, so when everyone bought on the last day all have recency 1 (and a "
        "single customer, compared with nobody, scores 1 and 1: lost); read such segments as "
        "'no difference between customers', not as lost customers. The segment follows "
        "from the two scores, the first rule "
        f"that matches: {rules}. Measured at the last day in the data."
    )


def _pareto_section(result: dict[str, Any], curve: list[dict[str, Any]]) -> str:
    chart = svg.line_chart(
        [f"{p['customers_share']:g}%" for p in curve],
        [("cumulative revenue %", [p["revenue_share"] for p in curve])],
        x_label="% of customers, biggest spenders first",
        y_label="% of revenue",
        title="Pareto curve",
    ) + tables.folded(
        "Cumulative % of revenue of the biggest spenders",
        ["% of customers, biggest spenders first", "% of revenue"],
        [[rate(p["customers_share"]), rate(p["revenue_share"])] for p in curve],
    )
    summary = result["summary"]
    share = rate(summary["top_revenue_share"])
    top, limit = summary["top_customers"], result["parameters"]["limit"]
    who = f"{top:,} customer{'s' if top != 1 else ''}"
    listed = (
        ""
        if not top
        else f" report.json lists them in metrics.pareto.rows ({who})."
        if limit is None or top <= limit
        else f" report.json lists the first {limit:,} of them in metrics.pareto.rows ({who})."
    )
    if not summary["ranked_customers"]:
        chart = _no_data(
            NO_PURCHASES if not summary["customers"] else "no customer has a net revenue above 0"
        )
    return _section(
        "Pareto curve",
        f"Customers sorted from biggest to smallest spender: the top 20 % bring {share} of "
        f"revenue.{listed}",
        "The further the curve bends up and left, the more revenue depends on a few "
        "customers: recognise and look after them.",
        chart,
        result["definition"],
    )


NO_PURCHASES = "no purchases in the data (every row is a refund)"


def _no_data(reason: str) -> str:
    """What stands in place of a chart that would be empty, and why."""
    return svg.no_data(reason)


def write_files(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file of ``files`` (name -> text) into ``out_dir``, all or none.

    Each file goes to a temporary ``.NAME.tmp`` first. Once all are written, each
    existing target is kept aside as ``.NAME.bak`` (a hard link, else a copy), then the
    temporaries are renamed over the targets in the order given. On any failure the
    targets already replaced get their old file back (or are deleted if there was none),
    the temporaries and backups are deleted and the folders this call created
    (``out_dir`` and missing parents) are removed, so the folder is as it was. The
    backups are deleted once every file is in.
    """
    created = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    temporaries: list[Path] = []
    backups: dict[Path, Path] = {}  # target -> its old file kept aside
    replaced: list[Path] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in files:
            target = out_dir / name
            if target.is_dir():  # os.replace would fail after the first rename
                raise IsADirectoryError(errno.EISDIR, f"{name} in it is a directory", str(target))
        for name, text in files.items():
            tmp = out_dir / f".{name}.tmp"
            temporaries.append(tmp)
            tmp.write_text(text, encoding="utf-8")
        for name in files:
            target = out_dir / name
            if target.exists():
                backups[target] = _keep_aside(target, out_dir / f".{name}.bak")
        for name in files:
            os.replace(out_dir / f".{name}.tmp", out_dir / name)
            replaced.append(out_dir / name)
    except BaseException:
        _restore(replaced, backups)
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
        for folder in created:  # deepest first; stops at one that is not empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    for backup in backups.values():
        backup.unlink(missing_ok=True)


def _keep_aside(target: Path, backup: Path) -> Path:
    """``backup``, a second name (else a copy) of ``target``, which stays in place."""
    backup.unlink(missing_ok=True)  # a backup left by a run that was killed
    try:
        os.link(target, backup)
    except OSError:  # no hard links on this file system, or target on another mount
        shutil.copy2(target, backup)
    return backup


def _restore(replaced: list[Path], backups: dict[Path, Path]) -> None:
    """Put the old file back over each target in ``replaced`` (delete a target that had
    none), then delete the backups no longer needed. A backup that cannot be put back is
    left where it is, the only copy of the old file."""
    for target in reversed(replaced):
        try:
            if target in backups:
                os.replace(backups.pop(target), target)
            else:
                target.unlink(missing_ok=True)
        except OSError:
            continue
    for backup in backups.values():  # targets never replaced: still their old file
        backup.unlink(missing_ok=True)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
