"""A survey answers file read beside the transactions (metrics loyalty-kinds, clv
health) whose dates also read month first is warned of by name, without the advice to
pass --date-format: that option reads the transactions only, so following the advice
refused ISO transactions ('unparsable date (format %m/%d/%Y)')."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import fidelite

TX = "customer_id,timestamp,amount\nc1,2024-01-05,10\nc1,2024-02-07,12\nc2,2024-02-09,8\n"
ANSWERS = "customer_id,timestamp,question,score\nc1,05/01/2024,nps,9\nc2,09/02/2024,nps,3\n"


@pytest.mark.parametrize(
    "command", [["metrics", "loyalty-kinds"], ["clv", "health"]], ids=["loyalty-kinds", "health"]
)
def test_survey_dates_read_two_ways_are_warned_of_by_file(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    answers = tmp_path / "answers.csv"
    answers.write_text(ANSWERS)
    run = fidelite(*command, "-i", tmp_path / "tx.csv", "--surveys", answers)
    said = " ".join(run.stderr.split())
    assert (
        f"warning dates of the survey answers file {answers}: every date also reads month "
        "first (e.g. '05/01/2024'): read day first, as %d/%m/%Y; --date-format reads the "
        "transactions only: if this file's month comes first, write its dates as YYYY-MM-DD"
    ) in said
    assert "pass --date-format" not in said
