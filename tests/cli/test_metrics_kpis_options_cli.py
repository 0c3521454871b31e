"""``fidelite metrics program-kpis``: ``--point-value`` refuses negative zero (it was
printed as ``-0`` and priced the liability ``-0.0``), and the help says what the options
do: ``--timezone`` defaults to the program file's zone, csv's '#' lines go to stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import TIER_EVENTS, TIER_PROGRAM, as_json, fidelite


@pytest.fixture
def db(tmp_path: Path) -> str:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=url)
    (tmp_path / "events.csv").write_text(TIER_EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=url)
    return url


@pytest.mark.parametrize("text", ["-0", "-0.00", "-0.01"])
def test_a_negative_point_value_even_zero_is_a_usage_error(db: str, text: str) -> None:
    refused = fidelite("metrics", "program-kpis", "--db", db, f"--point-value={text}", "-f",
                       "json", ok=False)  # fmt: skip
    assert refused.returncode == 2
    assert as_json(refused) == {"error": {"code": "usage", "message": (
        f"--point-value: expected a money amount such as 0.01, got {text!r}")}}  # fmt: skip


def test_a_point_value_of_zero_prices_the_liability_at_zero(db: str) -> None:
    kpis = as_json(fidelite("metrics", "program-kpis", "--db", db, "--point-value", "0", "-f",
                            "json"))  # fmt: skip
    assert kpis["parameters"]["point_value"] == "0"
    assert [row["liability"] for row in kpis["rows"]] == [0.0] * len(kpis["rows"])
    assert all(str(row["liability"]) == "0.0" for row in kpis["rows"])


def _option_help(command: str, option: str, following: str) -> str:
    text = fidelite("metrics", command, "--help").stdout
    flat = " ".join(text.replace("│", " ").split())
    start = flat.index(f" {option} ", flat.index("─ Options ─"))
    return flat[start : flat.index(f" {following} ", start)]


def test_program_kpis_help_says_the_time_zone_defaults_to_the_program_files() -> None:
    timezone = _option_help("program-kpis", "--timezone", "--date-format")
    assert timezone == (
        " --timezone <str> Business time zone (IANA), decides the local day (default: the "
        "--program-file's time zone, else UTC)."
    )
    assert _option_help("rfm", "--timezone", "--date-format") == (
        " --timezone <str> Business time zone (IANA), decides the local day. [default: UTC]"
    )


def test_the_format_help_says_the_hash_lines_go_to_stderr() -> None:
    for command in ("program-kpis", "rfm"):
        fmt = _option_help(command, "--format", "--timezone")
        assert fmt == (
            " --format -f <table|json|csv> table, json or csv (csv: the rows alone on stdout; "
            "the metric, definition, summary and parameters as '#' lines on stderr). "
            "[default: table]"
        ), command
