"""What a reader must know before the numbers: dates read one of two ways, and the
box that shows the report's ``warnings`` at the top of ``report.html``.

A file whose every date also reads month first (no day above 12) is read day first,
as every command reads it; ``fidelite metrics`` says so on the terminal. Read the
wrong way round, every monthly figure of the report is wrong, so the report states it
first too: one warning per file read that way (transactions, survey answers,
subscriptions), naming the file, in ``report.json``'s ``warnings``, at the top of the
HTML and on the terminal. The report's ``--date-format`` reads the transactions only:
the warning of a survey or subscriptions file says how to give that file's dates
instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from fidelite.analytics.answers import LoadedAnswers
from fidelite.analytics.subscriptions import LoadedSubscriptions

# --date-format is the transactions' only: what the other files' warnings add.
OTHER_FILE = (
    "; --date-format reads the transactions only: if this file's month "
    "comes first, write its dates as YYYY-MM-DD"
)
ADVICE = "; pass --date-format"  # where the loader's advice, for the transactions, starts


def for_other_file(warning: str) -> str:
    """A survey or subscriptions file's date warning, its advice to pass --date-format
    (which would read the transactions that way, not this file) replaced by what works;
    for every command that reads such a file beside transactions."""
    return warning.split(ADVICE, 1)[0] + OTHER_FILE


def date_warnings(
    transactions: dict[str, Any] | None,
    answers: LoadedAnswers | None = None,
    subscriptions: LoadedSubscriptions | None = None,
) -> list[str]:
    """One warning per input whose dates were read day first although every one also
    reads month first, in the order transactions, survey answers, subscriptions.

    ``transactions`` is the report's ``input`` facts (``date_warning`` present only
    for such a file); an input absent or read one way only gives no warning."""
    found: list[str] = []
    if transactions is not None and transactions.get("date_warning"):
        found.append(
            f"Dates of the transactions file {transactions['input']}: "
            f"{transactions['date_warning']}"
        )
    if answers is not None and answers.date_warning:
        found.append(
            f"Dates of the survey answers file {answers.source}: "
            f"{for_other_file(answers.date_warning)}"
        )
    if subscriptions is not None and subscriptions.date_warning:
        found.append(
            f"Dates of the subscriptions file {subscriptions.source}: "
            f"{for_other_file(subscriptions.date_warning)}"
        )
    return found


def warnings_box(warnings: Sequence[str]) -> str:
    """The report's warnings as a list under a "Read this first" heading ("" when
    there is none), escaped."""
    if not warnings:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return (
        "<section class='warnings' aria-labelledby='read-first'>"
        f"<h2 id='read-first'>Read this first</h2><ul>{items}</ul></section>"
    )
