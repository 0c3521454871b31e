"""``fidelite webhooks list``: the same subscription fields as ``add`` gives."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.store import Database
from tests.webhooks.support import processor

_register()
runner = CliRunner()


def test_list_gives_the_event_types_as_add_does(tmp_path: Path) -> None:
    """`webhooks list -f json` gives event_types as a list, as `add -f json` does; the
    CSV joins them with commas."""
    path = tmp_path / "shop.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    processor(db)
    db.dispose()

    def cli(*args: str, fmt: str = "json") -> str:
        result = runner.invoke(app, ["webhooks", *args, "--program", "shop",
                                     "--db", f"sqlite:///{path}", "--format", fmt])  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.stdout

    both = json.loads(cli("add", "https://93.184.216.34/a", "-e", "tier.changed", "-e",
                          "points.earned", "-k", "a"))  # fmt: skip
    every = json.loads(cli("add", "https://93.184.216.34/b", "-k", "b"))
    assert (both["event_types"], every["event_types"]) == (
        ["points.earned", "tier.changed"], ["*"]
    )  # fmt: skip
    listed = json.loads(cli("list"))
    assert [(s["id"], s["event_types"]) for s in listed] == [
        (both["id"], ["points.earned", "tier.changed"]), (every["id"], ["*"])
    ]  # fmt: skip
    lines = cli("list", fmt="csv").splitlines()
    assert [line.split(",https://")[1].split(",True")[0] for line in lines[1:]] == [
        '93.184.216.34/a,"points.earned,tier.changed"', "93.184.216.34/b,*"
    ]  # fmt: skip
