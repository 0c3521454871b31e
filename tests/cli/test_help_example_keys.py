"""The help's examples can be copied and run one after the other.

An idempotency key names one operation: ``ledger earn`` and ``ledger adjust`` both used
``-k gw-1``, so running the second example after the first ended in
``idempotency_conflict``. Every example command line in every help text (a command's
description, its epilog, its options' help) uses its own key, unless it repeats an
example's request exactly (only ``--format`` differs): a replay, which answers the first
again.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import typer

from fidelite.cli.main import _register, app

_EXAMPLE = re.compile(r"(fidelite (?:[^\n]|\n(?=[ \t]*--?\w))*)")
_FORMAT = re.compile(r"\s(?:-f|--format)[ =]?\S+")
_KEY = re.compile(r"(?:^|\s)(?:-k|--key)(?:[ =]|(?=\w))(\S+)")


def _texts() -> list[str]:
    _register()
    texts: list[str] = []

    def walk(command: Any) -> None:
        texts.extend(t for t in (command.help, command.epilog) if t)
        texts.extend(p.help for p in command.params if getattr(p, "help", None))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return texts


def test_no_two_help_examples_share_an_idempotency_key() -> None:
    lines = {" ".join(m.split()) for text in _texts() for m in _EXAMPLE.findall(text)}
    users: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        for key in _KEY.findall(line):
            users[key].add(_FORMAT.sub("", line))
    assert len(users) >= 8, sorted(users)  # the examples were found
    shared = {key: sorted(found) for key, found in users.items() if len(found) > 1}
    assert shared == {}
