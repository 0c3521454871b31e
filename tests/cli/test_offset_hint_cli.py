"""A time without a UTC offset is refused with an example the same option accepts:
``20260101`` is read as midnight without offset, and ``20260101+01:00`` (the raw text
with an offset glued on) is itself refused, so the hint spells the instant out."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import TIER_EVENTS as EVENTS
from tests.cli.support import TIER_PROGRAM as PROGRAM
from tests.cli.support import as_json, fidelite


def test_the_offset_hint_of_tier_commands_is_a_form_they_accept(tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db)
    cases = [
        (["review", "--as-of", "20270101"], "--as-of: '20270101' needs a UTC offset (e.g. "
         "2027-01-01T00:00:00+01:00, or 2027-01-01 for midnight in the program's zone)",
         ["review", "--as-of", "2027-01-01T00:00:00+01:00"], ["review", "--as-of", "2027-01-01"]),
        (["assign", "bob", "gold", "--reason", "x", "-k", "k1", "--until", "20990101"],
         "--until: '20990101' needs a UTC offset (e.g. 2099-01-01T00:00:00+01:00, or "
         "2099-01-01 for midnight in the program's zone)",
         ["assign", "bob", "gold", "--reason", "x", "-k", "k2", "--until",
          "2099-01-01T00:00:00+01:00"],
         ["assign", "bob", "gold", "--reason", "x", "-k", "k3", "--until", "2099-01-01"]),
        (["review", "--as-of", "20270101T1030"], "--as-of: '20270101T1030' needs a UTC "
         "offset (e.g. 2027-01-01T10:30:00+01:00)",
         ["review", "--as-of", "2027-01-01T10:30:00+01:00"], None),
    ]  # fmt: skip
    for refused_args, message, *_ in cases:
        refused = fidelite("tier", *refused_args, "-p", program, "-f", "json", db=db, ok=False)
        assert refused.returncode == 2
        assert as_json(refused)["error"] == {"code": "usage", "message": message}
    shown = as_json(fidelite("tier", "show", "bob", "-p", program, "-f", "json", db=db))
    assert (shown["tier"], shown["timeline"]) == ("bronze", [])  # the refusals changed nothing
    glued = fidelite("tier", "review", "--as-of", "20270101+01:00", "-p", program, db=db,
                     ok=False)  # fmt: skip
    assert glued.returncode == 2  # what the old hint suggested: still refused
    for _, _, *accepted in cases:  # what the hint suggests is taken
        for args in accepted:
            if args is not None:
                fidelite("tier", *args, "-p", program, db=db)
    shown = as_json(fidelite("tier", "show", "bob", "-p", program, "-f", "json", db=db))
    assert shown["tier"] == "gold"
