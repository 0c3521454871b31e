"""Ctrl-C while the command line is still loading ends it quietly with status 130."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A real SIGINT, sent by the process to itself while ``typer`` (which the command line
# imports first) is being imported: the moment a user's Ctrl-C lands on a busy machine.
CHILD = textwrap.dedent(
    """
    import importlib.abc, os, signal, sys

    signal.signal(signal.SIGINT, signal.default_int_handler)

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "typer":
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, Interrupting())
    sys.argv = ["fidelite", "program", "--help"]
    from fidelite.cli.entry import main
    main()
    """
)


def test_ctrl_c_while_loading_exits_130_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "Interrupted.\n")


def test_the_console_script_is_the_interrupt_safe_entry() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "fidelite"]
    assert script.value == "fidelite.cli.entry:main"
