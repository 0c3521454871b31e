"""The ``fidelite`` command imports only the module of the command it runs.

The analytics (ibis, DuckDB), the CLV models (SciPy) and the server (FastAPI) take
seconds to import; a till operator's ``fidelite ledger balance`` needs none of them.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from fidelite.cli import main as cli_main

_PROBE = """
import sys
sys.argv = ["fidelite", *{args!r}]
from fidelite.cli.main import main
try:
    main()
except SystemExit:
    pass
print("LOADED", sorted(m for m in ("ibis", "scipy", "fastapi", "fidelite.cli.metrics",
      "fidelite.cli.ledger") if m in sys.modules))
"""


def _loaded(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=list(args))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("LOADED")]
    assert lines, proc.stderr
    return lines[-1]


def test_a_ledger_command_does_not_import_the_analytics_the_models_or_the_server() -> None:
    assert _loaded("ledger", "--help") == "LOADED ['fidelite.cli.ledger']"


def test_the_version_loads_no_command() -> None:
    assert _loaded("--version") == "LOADED []"


def test_the_root_help_lists_every_command() -> None:
    fresh = importlib.reload(cli_main)
    fresh._register(fresh._invoked(["--help"]))
    result = CliRunner().invoke(fresh.app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listed = [line.split()[1] for line in result.output.splitlines() if line.startswith("│ ")]
    assert set(cli_main._COMMANDS) <= set(listed), result.output


@pytest.mark.parametrize("name", sorted(cli_main._COMMANDS))
def test_each_command_registers_alone(name: str) -> None:
    fresh = importlib.reload(cli_main)  # a new root app with no command attached
    fresh._register(name)
    result = CliRunner().invoke(fresh.app, [name, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Usage: fidelite {name}" in result.output
    assert {command.name for command in fresh.app.registered_commands} | {
        group.name for group in fresh.app.registered_groups
    } == {name}
