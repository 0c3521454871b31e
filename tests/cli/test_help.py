"""Every command's help reads as paragraphs on an 80-column terminal."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from fidelite.cli.helptext import reflow
from fidelite.cli.main import _register, app

WIDTH = 80


def _commands(*, groups: bool = False) -> list[list[str]]:
    """Every command's path (``groups``: every group's too, the root's first)."""
    _register()
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            if groups:
                found.append(path)
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(typer.main.get_command(app), [])
    return found


def _description(output: str) -> list[str]:
    """The help's prose: the lines between the usage line and the first panel."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("╭")), len(lines))
    return [line.rstrip() for line in lines[start:end]]


def test_reflow_joins_the_lines_of_a_paragraph_and_keeps_lists() -> None:
    text = (
        "First line\nwraps here.\n\nA list:\n- one\n- two\n\nExample: fidelite x\n\n\bkept\nas is"
    )
    assert reflow(text) == (
        "First line wraps here.\n\nA list:\n- one\n- two\n\nExample: fidelite x\n\n\bkept\nas is"
    )
    assert reflow(reflow(text)) == reflow(text)


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_paragraphs_are_wrapped_once_to_the_terminal(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    prose = _description(result.output)
    for line, following in itertools.pairwise(prose):
        words = following.split()
        if not line.strip() or not words or words[0].startswith("-"):
            continue
        # Rich breaks a line only when the next word would not fit (1 space of margin).
        assert len(line) + 1 + len(words[0]) > WIDTH - 1, (line, following)


@pytest.mark.parametrize("command", _commands(groups=True), ids=lambda c: " ".join(c) or "root")
def test_every_group_and_command_help_shows_an_example(command: list[str]) -> None:
    """README: every command has --help with an example; so does every group."""
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example" in "\n".join(_description(result.output)), result.output
