"""``fidelite apikey`` on a SQLite file and PostgreSQL: a label longer than 200
characters, or holding a control character (an ANSI escape), is a usage error (exit 2)
storing nothing (PostgreSQL printed a traceback with the secret's hash, SQLite stored
it); a CSV cell a spreadsheet would run as a formula is written as text; a key is
revoked by its whole token without the secret printed; a list with no key says so;
``list --format json`` gives when each key was last used."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fidelite.api.keys import authenticate, list_keys
from fidelite.store import Database
from tests.cli.support import fidelite
from tests.conftest import BACKENDS, make_database


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    db = make_database(request.param, request, tmp_path)
    yield db
    db.dispose()


def create(db: Database, label: str, *, ok: bool = True) -> tuple[int, str, str]:
    proc = fidelite("apikey", "create", "-p", "shop", "--role", "support", "--label", label,
                    "-f", "json", db=db.url, ok=ok)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def test_a_label_too_long_or_with_control_characters_is_a_usage_error(database: Database) -> None:
    code, out, err = create(database, "x" * 250, ok=False)
    assert code == 2 and "Traceback" not in out + err
    assert json.loads(out)["error"] == {
        "code": "usage", "message": "label: at most 200 characters, got 250"}  # fmt: skip
    code, out, err = create(database, "till \x1b[31mred\x1b[0m", ok=False)
    assert code == 2 and "\x1b" not in out + err
    assert json.loads(out)["error"]["message"] == (
        "label: control characters are not allowed (U+001B): give plain text"
    )
    code, out, _ = create(database, "a\u202eb", ok=False)
    assert code == 2 and "U+202E" in json.loads(out)["error"]["message"]
    assert list_keys(database) == []
    code, out, _ = create(database, "é" * 200)
    assert code == 0 and json.loads(out)["label"] == "é" * 200
    assert [k.label for k in list_keys(database)] == ["é" * 200]


def test_a_formula_label_is_text_in_csv_and_negative_numbers_stay_numbers(
    database: Database,
) -> None:
    formula = '=HYPERLINK("http://evil.example","click")'
    create(database, formula)
    create(database, "-5")
    csv = fidelite("apikey", "list", "-f", "csv", db=database.url).stdout.splitlines()
    assert csv[0] == "key_id,program_id,role,label,created_at,revoked_at,last_used_at"
    assert csv[1].split(",")[3:5] == ['"\'=HYPERLINK(""http://evil.example""', '""click"")"']
    assert csv[2].split(",")[3] == "-5"
    from fidelite.cli.output import csv_cell

    cells = [csv_cell(v) for v in ("@SUM(A1)", "+1+2", "-1+2", "\tx", -7, "-12.50", "1e-3")]
    assert cells == ["'@SUM(A1)", "'+1+2", "'-1+2", "'\tx", -7, "-12.50", "1e-3"]


def test_a_key_is_revoked_by_its_whole_token_without_printing_the_secret(
    database: Database,
) -> None:
    made = json.loads(create(database, "till-7")[1])
    token, key_id = made["token"], made["key_id"]
    secret = token.split("_", 2)[2]
    wrong = f"fid_{key_id}_{'A' * len(secret)}"
    refused = fidelite("apikey", "revoke", wrong, db=database.url, ok=False)
    assert refused.returncode == 1 and "A" * len(secret) not in refused.stdout + refused.stderr
    assert "nothing revoked" in refused.stderr
    assert authenticate(database, token) is not None  # still live
    unknown = fidelite("apikey", "revoke", f"fid_000000000000_{secret}", db=database.url, ok=False)
    assert unknown.returncode == 1 and secret not in unknown.stdout + unknown.stderr
    for fmt in ("table", "json"):
        done = fidelite("apikey", "revoke", token, "-f", fmt, db=database.url)
        assert secret not in done.stdout + done.stderr
        assert key_id in done.stdout
    assert authenticate(database, token) is None
    assert [k.revoked_at is not None for k in list_keys(database)] == [True]


def test_a_list_with_no_key_says_so(database: Database) -> None:
    create(database, "till-7")
    table = fidelite("apikey", "list", "-p", "No Such", db=database.url)
    assert table.stderr.strip() == "no API keys for program 'No Such'"
    assert "key_id" in table.stdout
    assert fidelite("apikey", "list", "-p", "No Such", "-f", "json", db=database.url).stdout == (
        "[]\n"
    )


def test_list_gives_when_each_key_was_last_used(database: Database) -> None:
    made = json.loads(create(database, "till-7")[1])
    other = json.loads(create(database, "till-8")[1])
    listed = json.loads(fidelite("apikey", "list", "-f", "json", db=database.url).stdout)
    assert [k["last_used_at"] for k in listed] == [None, None]
    assert authenticate(database, made["token"]) is not None
    first = {k.key_id: k.last_used_at for k in list_keys(database)}
    assert first[made["key_id"]] is not None and first[other["key_id"]] is None
    assert authenticate(database, made["token"]) is not None  # within the minute: no write
    assert {k.key_id: k.last_used_at for k in list_keys(database)} == first
    listed = json.loads(fidelite("apikey", "list", "-f", "json", db=database.url).stdout)
    used = {k["key_id"]: k["last_used_at"] for k in listed}
    assert used == {made["key_id"]: first[made["key_id"]].isoformat(), other["key_id"]: None}
