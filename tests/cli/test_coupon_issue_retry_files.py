"""A retry of ``fidelite coupon issue`` after a run killed once its codes were stored
(the codes in the hidden part file, not yet named): a review found that

- when another run (another key) had taken the file name meanwhile, the retry deleted
  the part file, the only copy of the stored codes, and answered that they were
  written to the other run's file: they are now kept beside it, under a name no run
  removes, and the retry says where;
- a retry from another directory named a file that was never written (the answer kept
  ``--out`` as typed, relative): the answer now keeps the absolute path, and the retry
  writes the file there;
- a code typed with O for 0 was called 'not a single-use code' instead of mistyped."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.engine.coupon import refusal_detail
from tests.cli.support import as_json, fidelite
from tests.cli.test_coupon_cli import prepare, read_csv, stored
from tests.cli.test_coupon_issue_killed import ISSUE, _killed, _url


def test_the_stored_codes_are_kept_when_another_run_took_the_name(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    db = _url("sqlite", request, tmp_path)
    program = prepare(tmp_path, db)
    out = tmp_path / "ann.csv"
    args = [*ISSUE, "-o", out, "-p", program]
    assert _killed("after_commit", 9, db, *args) == -9
    first = stored(db)
    other = as_json(fidelite("coupon", "issue", "gift", "-n", "2", "--member", "ann",
                             "--key", "ann-2", "-o", out, "-p", program, "-f", "json",
                             db=db))  # fmt: skip
    assert (other["count"], other["replayed"]) == (2, False)
    theirs = read_csv(out)
    again = fidelite(*args, "-f", "json", db=db, separate=True)
    assert as_json(again)["replayed"] is True
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("ann.csv.") and p.suffix == ".csv"]
    assert len(kept) == 1 and f"the codes this --key stored are in {kept[0]}" in again.stderr
    codes = sorted((code, "gift", "issued", "ann") for code, _, _ in read_csv(kept[0])[1:])
    assert len(codes) == 3 and set(codes) <= set(stored(db)) and set(codes) == set(first)
    assert read_csv(out) == theirs  # the other run's file is left as it was


def test_a_retry_from_another_directory_writes_the_file_where_it_was_asked(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _url("sqlite", request, tmp_path)
    program = prepare(tmp_path, db)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    args = [*ISSUE, "-o", "sub/ann.csv", "-p", program]
    assert _killed("after_commit", 9, db, *args) == -9
    monkeypatch.chdir(tmp_path / "sub")
    again = as_json(fidelite(*args, "-f", "json", db=db))
    assert (again["replayed"], again["file"]) == (True, str(tmp_path / "sub" / "ann.csv"))
    written = read_csv(tmp_path / "sub" / "ann.csv")
    assert sorted((code, "gift", "issued", "ann") for code, _, _ in written[1:]) == stored(db)


def test_a_code_typed_with_o_for_zero_is_called_mistyped() -> None:
    assert refusal_detail("coupon_invalid", "SPRING-OOOO-1111-22T3-W").startswith(
        "the check symbol (the last one) does not match"
    )
    assert refusal_detail("coupon_invalid", "SPRING-1111").startswith("not a single-use code")
