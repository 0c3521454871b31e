"""Every table of the report has a caption and its column headers in a ``<thead>``;
the tables not compared cell by cell elsewhere scope their headers."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

TX = """customer_id,timestamp,amount,order_id,product_id,channel
A,2024-01-03,10,o1,tea,web
A,2024-01-03,5,o1,cup,web
A,2024-02-10,30,o2,tea,web
B,2024-01-20,50,o3,tea,shop
B,2024-01-20,8,o3,cup,shop
C,2024-02-05,5,o4,cup,shop
"""
ANSWERS = """customer_id,timestamp,question,score
A,2024-01-05,nps,10
B,2024-01-06,csat,4
"""
SUBS = """customer_id,mrr,start,end
A,10,2024-01-01,2024-02-10
"""


def test_tables_have_captions_and_header_rows(tmp_path: Path) -> None:
    for name, text in (("tx.csv", TX), ("answers.csv", ANSWERS), ("subs.csv", SUBS)):
        (tmp_path / name).write_text(text)
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "tx.csv"), "--out", str(out), "-f", "json",
            "--surveys", str(tmp_path / "answers.csv"),
            "--subscriptions", str(tmp_path / "subs.csv"), "--segment-col", "channel"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    captions = re.findall(r"<table><caption>([^<]*)</caption><thead><tr>", html)
    assert html.count("<table") == len(captions) == html.count("<thead>")
    assert captions == [
        "Key figures of the whole file",
        "Monthly retention and churn (n/a: no customers the month before)",
        "% of each first-purchase month&#x27;s customers who bought N months later "
        "(blank: not observed yet)",
        "% of each first-purchase month&#x27;s customers still buying N months later "
        "(blank: not observed yet)",
        "% of each first-purchase month&#x27;s new customers who ordered again within D days",
        "Cumulative % of revenue of the biggest spenders",
        "Segments by channel",
        "Pairs of products bought together",
        "NPS per month",
        "Satisfaction, effort and share of wallet over the whole file",
        "Recurring revenue (MRR) movements per month",
    ]
    assert (
        '<thead><tr><th scope="col">figure</th><th scope="col">value</th></tr></thead><tbody>'
        "<tr><th>Customers</th><td>3</td></tr>"
    ) in html
    assert (
        '<thead><tr><th scope="col">Segment</th><th scope="col">Customers</th>'
        '<th scope="col">Repeat purchase rate</th><th scope="col">Monthly retention</th>'
        "</tr></thead>"
    ) in html
    assert '<thead><tr><th scope="col">product A</th><th scope="col">product B</th>' in html
