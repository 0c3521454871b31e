"""``fidelite coupon issue``: the file and the database agree, whatever goes wrong, and a
retry with the same key issues nothing (the installed script, on a real SQLite file; a
failing disk write and two runs at once on PostgreSQL)."""

from __future__ import annotations

import csv
import resource
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from fidelite.engine.coupon import parse_code
from fidelite.processing.tables import coupons
from fidelite.store import Database
from tests.cli.support import as_json, at_once_while_held, fidelite
from tests.conftest import make_database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: gift, on: [purchase], coupon_campaign: gift, fixed: 50}
coupons:
  - {id: gift, name: Gift, prefix: GIFT}
"""


def prepare(tmp_path: Path, db: str) -> Path:
    """The program file, and ann enrolled in the program on ``db``."""
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    fidelite("db", "upgrade", db=db)
    (tmp_path / "crm.csv").write_text("member\nann\n", encoding="utf-8")
    fidelite("import", "members", tmp_path / "crm.csv", "-p", program, db=db)
    return program


def stored(db: str) -> list[tuple[str, str, str, str | None]]:
    database = Database(db)
    try:
        with database.read() as conn:
            rows = conn.execute(select(coupons.c.code, coupons.c.campaign, coupons.c.status,
                                       coupons.c.member_ref).order_by(coupons.c.code))  # fmt: skip
            return [tuple(r) for r in rows]  # type: ignore[misc]
    finally:
        database.dispose()


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_coupon_issue_writes_the_codes_it_stores(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    program = prepare(tmp_path, db)
    out = tmp_path / "ann.csv"
    done = fidelite("coupon", "issue", "gift", "--count", "3", "--member", "ann", "--out", out,
                    "--key", "ann-1", "-p", program, "-f", "json", db=db)  # fmt: skip
    assert as_json(done) == {"campaign": "gift", "member": "ann", "count": 3, "file": str(out),
                             "replayed": False}  # fmt: skip
    header, *rows = read_csv(out)
    assert header == ["code", "campaign", "member"]
    assert all(parse_code(code) is not None and code.startswith("GIFT-") for code, _, _ in rows)
    assert stored(db) == sorted((code, "gift", "issued", "ann") for code, _, _ in rows)
    assert {(c, m) for _, c, m in rows} == {("gift", "ann")} and len({r[0] for r in rows}) == 3
    anyone = tmp_path / "anyone.csv"
    fidelite("coupon", "issue", "gift", "-n", "2", "-o", anyone, "-k", "any-1", "-p", program,
             db=db)  # fmt: skip
    assert [row[1:] for row in read_csv(anyone)[1:]] == [["gift", ""], ["gift", ""]]
    assert len(stored(db)) == 5


def test_coupon_issue_refusals_store_nothing_and_leave_no_file(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    program = prepare(tmp_path, db)
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n", encoding="utf-8")
    out = tmp_path / "codes.csv"
    cases = [
        (["gift", "-n", "3", "-o", existing], "[exists] " + f"{existing} already exists"),
        (["gift", "-n", "3", "-o", tmp_path / "missing" / "codes.csv"],
         "[invalid_file] cannot create"),
        (["gift", "-n", "3", "--member", "carol", "-o", out], "[unknown_member] no member 'carol'"),
        (["nope", "-n", "3", "-o", out],
         "[unknown_campaign] no coupon campaign 'nope' (campaigns: gift)"),
        (["gift", "-n", "0", "-o", out], "[invalid_count] count: 0 is not between 1 and"),
    ]  # fmt: skip
    for args, message in cases:
        refused = fidelite("coupon", "issue", *args, "-k", "k1", "-p", program, db=db, ok=False)
        assert refused.returncode == 1, args
        assert message in " ".join(refused.stderr.split()), (args, refused.stderr)
        assert not out.exists(), args
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "crm.csv", "existing.csv", "shop.db", "shop.yaml"]  # fmt: skip
    assert stored(db) == []


def _small_files() -> None:
    """In the child: files may not grow past 4 KB, and writing more fails (EFBIG)
    instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.postgres
def test_coupon_issue_stores_nothing_when_the_file_cannot_be_written(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # The database is the PostgreSQL server, outside the limit the child gets on the
    # size of the files it writes: only the codes file hits it, half way through.
    database = make_database("postgresql", request, tmp_path)
    db = database.url
    database.dispose()
    program = prepare(tmp_path, db)
    out = tmp_path / "codes.csv"
    refused = fidelite("coupon", "issue", "gift", "-n", "2000", "-o", out, "-k", "k1", "-p",
                       program, db=db, ok=False, before=_small_files)  # fmt: skip
    assert refused.returncode == 1
    assert "[invalid_file] cannot write" in refused.stderr
    assert "no code was stored" in " ".join(refused.stderr.split())
    assert not out.exists()
    assert stored(db) == []


ISSUE = ["coupon", "issue", "gift", "-n", "3", "--member", "ann", "--key", "ann-1"]


def test_coupon_issue_again_with_its_key_issues_nothing_and_prints_the_first_answer(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    program = prepare(tmp_path, db)
    out = tmp_path / "ann.csv"
    first = as_json(fidelite(*ISSUE, "-o", out, "-p", program, "-f", "json", db=db))
    assert first == {"campaign": "gift", "member": "ann", "count": 3, "file": str(out),
                     "replayed": False}  # fmt: skip
    written, codes = read_csv(out), stored(db)
    assert codes == sorted((code, "gift", "issued", "ann") for code, _, _ in written[1:])
    # a script retried after a timeout: the file is there, the codes are stored
    again = fidelite(*ISSUE, "-o", out, "-p", program, "-f", "json", db=db)
    assert as_json(again) == first | {"replayed": True}
    # another --out is the same request: the codes went to the first file
    elsewhere = fidelite(*ISSUE, "-o", tmp_path / "other.csv", "-p", program, db=db)
    assert " ".join(elsewhere.stdout.split()) == (
        f"issued 3 code(s) of campaign gift to member ann; written to {out} "
        "(replayed: already done with this key)"
    )
    assert (read_csv(out), stored(db)) == (written, codes)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ann.csv", "crm.csv", "shop.db", "shop.yaml"]  # fmt: skip


def test_coupon_issue_with_the_key_of_another_request_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    program = prepare(tmp_path, db)
    fidelite(*ISSUE, "-o", tmp_path / "ann.csv", "-p", program, db=db)
    written, codes = read_csv(tmp_path / "ann.csv"), stored(db)
    others = [
        ["gift", "-n", "4", "--member", "ann"],
        ["gift", "-n", "3"],
        ["nope", "-n", "3", "--member", "ann"],
    ]
    for args in others:
        refused = fidelite("coupon", "issue", *args, "-k", "ann-1", "-o", tmp_path / "new.csv",
                           "-p", program, "-f", "json", db=db, ok=False)  # fmt: skip
        assert refused.returncode == 1, args
        assert as_json(refused) == {"error": {
            "code": "idempotency_conflict", "field": "key",
            "message": "key 'ann-1' was already used for a different request"}}, args  # fmt: skip
    assert (read_csv(tmp_path / "ann.csv"), stored(db)) == (written, codes)
    assert not (tmp_path / "new.csv").exists()


def test_coupon_issue_refused_leaves_its_key_to_the_corrected_request(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    program = prepare(tmp_path, db)
    out = tmp_path / "codes.csv"
    refused = fidelite("coupon", "issue", "gift", "-n", "3", "--member", "carol", "-k", "ann-1",
                       "-o", out, "-p", program, db=db, ok=False)  # fmt: skip
    assert refused.returncode == 1 and "[unknown_member]" in refused.stderr
    assert not out.exists() and stored(db) == []
    done = as_json(fidelite(*ISSUE, "-o", out, "-p", program, "-f", "json", db=db))
    assert (done["count"], done["replayed"]) == (3, False)
    assert len(stored(db)) == 3 and len(read_csv(out)) == 4


@pytest.mark.postgres
def test_coupon_issue_run_twice_at_once_with_one_key_issues_once(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Both runs wait: one for ann, whom another session holds, after claiming the key;
    the other for that claim. The second issues nothing and leaves no file of its own."""
    database = make_database("postgresql", request, tmp_path)
    db = database.url
    program = prepare(tmp_path, db)
    outs = [tmp_path / "first.csv", tmp_path / "second.csv"]
    answers = at_once_while_held(database, "ann", *[[*ISSUE, "-o", out, "-p", program]
                                                     for out in outs])  # fmt: skip
    database.dispose()
    assert answers[1] == answers[0] | {"replayed": True}
    kept = Path(answers[0]["file"])
    assert [out.exists() for out in outs] == [out == kept for out in outs]
    assert stored(db) == sorted((code, "gift", "issued", "ann") for code, _, _ in
                                read_csv(kept)[1:])  # fmt: skip
    assert len(stored(db)) == 3
