"""The ledger's moves read ``t`` and ``z`` in lower case (``2027-04-01t00:00:00z``), as
the API, imports and program files do; they were a usage error on the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fidelite.store import Database
from tests.cli.support import as_json, fidelite
from tests.cli.test_ledger_move_dates_cli import NEW_YORK, lots, occurred


def test_earn_reads_lower_case_t_and_z(db: Database, tmp_path: Path) -> None:
    program = tmp_path / "ny.yaml"
    program.write_text(NEW_YORK, encoding="utf-8")
    fidelite("member", "add", "nm", "-p", program, db=db.url)
    done = as_json(fidelite("ledger", "earn", "nm", "50", "-k", "k1", "-p", program,
                            "--at", "2026-12-01t10:30:00z", "--expires", "2027-04-01t00:00:00z",
                            "--pending-until", "2026-12-05T00:00:00+01:00", "-f", "json",
                            db=db.url))  # fmt: skip
    assert occurred(db, done["transaction_id"]) == datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    assert lots(db) == [
        (50, datetime(2026, 12, 1, 10, 30, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC),
         datetime(2026, 12, 4, 23, 0, tzinfo=UTC)),
    ]  # fmt: skip
    refused = fidelite("ledger", "earn", "nm", "5", "-k", "k2", "-p", program,
                       "--expires", "2027-04-01t00:00:00", db=db.url, ok=False)  # fmt: skip
    assert refused.returncode == 2
    assert "--expires: '2027-04-01t00:00:00' needs a UTC offset" in refused.stderr
    assert len(lots(db)) == 1
