"""``--format`` of a command that refuses csv offers only table and json in its help.

Every command declared with ``TableJsonOption`` is found from the command tree, so a
command added later is checked too. Its help names the two formats it takes, ``-f
csv`` stays a usage error naming the option (nothing created), and a command whose
output is rows still lists csv.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.cli.options import FormatOption, TableJsonOption
from fidelite.cli.output import OutputFormat, refuse_csv

WIDE = {"COLUMNS": "200"}


def _commands_with(option: Any) -> list[list[str]]:
    """The command paths whose function declares ``option`` as a default."""
    _register()
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        function = inspect.unwrap(command.callback)
        defaults = [p.default for p in inspect.signature(function).parameters.values()]
        if any(d is option for d in defaults):
            found.append(path)

    walk(typer.main.get_command(app), [])
    return found


TABLE_JSON_COMMANDS = _commands_with(TableJsonOption)
ROWS_COMMANDS = _commands_with(FormatOption)


def _format_type(help_text: str) -> str:
    """The value shown after ``--format -f`` in a command's help (``<table|json>``)."""
    match = re.search(r"--format\s+-f\s+(<[^>]*>)", help_text)
    assert match, help_text
    return match.group(1)


def test_the_commands_found_are_the_ones_expected() -> None:
    assert len(TABLE_JSON_COMMANDS) > 30
    for command in (["ledger", "balance"], ["program", "check"], ["import", "events"],
                    ["member", "add"], ["db", "upgrade"], ["clv", "fit"]):  # fmt: skip
        assert command in TABLE_JSON_COMMANDS
    assert ["ledger", "history"] in ROWS_COMMANDS
    assert ["ledger", "history"] not in TABLE_JSON_COMMANDS


@pytest.mark.parametrize("command", TABLE_JSON_COMMANDS, ids=" ".join)
def test_help_lists_only_table_and_json(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert _format_type(result.output) == "<table|json>"
    assert "table|json|csv" not in result.output


@pytest.mark.parametrize("command", TABLE_JSON_COMMANDS, ids=" ".join)
def test_csv_is_a_usage_error_naming_the_option(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "shop.db"
    result = CliRunner().invoke(
        app, [*command, "-f", "csv"], env={**WIDE, "FIDELITE_DB": f"sqlite:///{db}"}
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())
    assert (
        "Invalid value for '--format' / '-f': 'csv' is not one of 'table', 'json': "
        "this command's output is not a list of rows"
    ) in said
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ROWS_COMMANDS, ids=" ".join)
def test_a_rows_command_still_lists_csv(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert _format_type(result.output) == "<table|json|csv>"


def test_another_value_names_only_table_and_json() -> None:
    result = CliRunner().invoke(app, ["ledger", "balance", "-f", "xml"], env=WIDE)
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())
    assert "Invalid value for '--format' / '-f': 'xml' is not one of 'table', 'json'." in said


@pytest.mark.parametrize("given", ["table", "json", OutputFormat.table, OutputFormat.json])
def test_table_and_json_reach_the_command_as_output_format_members(given: str) -> None:
    assert refuse_csv(given) is OutputFormat(given)


def test_json_reaches_a_command_as_the_json_member(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", f"sqlite:///{db}", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["database"] == f"sqlite:///{db}"
