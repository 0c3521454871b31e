"""``fidelite member erase`` without ``--yes`` never prompts where nobody can answer
(``-f json``, stdin not a terminal), and refuses an unknown member before asking."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.cli.support import FIDELITE, as_json, fidelite


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database where program shop has one member, C1."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=url)
    fidelite("ledger", "open", "shop", db=url)
    fidelite("member", "add", "C1", "-p", "shop", db=url)
    return url


def _status(db: str, ref: str) -> tuple[str, str]:
    shown = as_json(fidelite("member", "show", ref, "-p", "shop", "-f", "json", db=db))
    return shown["ref"], shown["status"]


def test_erase_with_json_format_and_no_yes_is_a_usage_error_without_prompting(db: str) -> None:
    proc = fidelite("member", "erase", "C1", "-p", "shop", "-f", "json", db=db, ok=False,
                    input="y\n")  # fmt: skip
    assert proc.returncode == 2
    assert as_json(proc) == {"error": {"code": "usage", "message": (
        "erasing C1 needs --yes: confirmation is asked only at a terminal, and not with "
        "--format json")}}  # fmt: skip
    assert _status(db, "C1") == ("C1", "active")


def test_erase_with_stdin_not_a_terminal_and_no_yes_is_a_usage_error(db: str) -> None:
    proc = fidelite("member", "erase", "C1", "-p", "shop", db=db, ok=False, input="y\n")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        "error [usage] erasing C1 needs --yes: confirmation is asked only at a terminal, "
        "and not with --format json\n"
    )
    assert _status(db, "C1") == ("C1", "active")


def test_erase_of_an_unknown_member_says_so_before_any_prompt(db: str) -> None:
    proc = fidelite("member", "erase", "NOPE", "-p", "shop", db=db, ok=False, input="y\n")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == "error [unknown_member] no member 'NOPE' in program 'shop'\n"


def test_erase_at_a_terminal_asks_and_erases_once_confirmed(db: str) -> None:
    main, child = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if k != "FIDELITE_DB"} | {"FIDELITE_DB": db}
        proc = subprocess.Popen([FIDELITE, "member", "erase", "C1", "-p", "shop"], stdin=child,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)  # fmt: skip
        os.write(main, b"y\n")
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(main)
        os.close(child)
    assert proc.returncode == 0, err
    assert out.startswith("Erase the personal data of C1? This cannot be undone [y/N]: ")
    assert "member C1 erased; now known as erased-1" in out
