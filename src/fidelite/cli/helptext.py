"""Help texts that wrap to the terminal: paragraphs of a docstring become one line each.

The commands' docstrings are wrapped at the source's line width. Typer's Rich help
keeps every line break of a paragraph and then wraps each line again to the
terminal, so on an 80-column terminal a sentence broke twice ("... in the rejects" /
"file; ..."). :func:`reflow_app` joins the lines of each paragraph before Typer sees
them; Rich then wraps the paragraph once, to whatever width the terminal has.

Lines that start a list item or are indented keep their own line, and a paragraph
that starts with ``\\b`` (Click's "do not rewrap" marker) is left as written.
"""

from __future__ import annotations

import inspect
import re

import typer

_OWN_LINE = re.compile(r"^(\s|[-*•] |\d+[.)] |Example:)")


def reflow(text: str) -> str:
    """``text`` with the single line breaks inside each paragraph made spaces.

    Idempotent: reflowing a reflowed text changes nothing.
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(_join(paragraph) for paragraph in paragraphs)


def _join(paragraph: str) -> str:
    if paragraph.startswith("\b"):
        return paragraph
    lines = paragraph.split("\n")
    joined = [lines[0]]
    for line in lines[1:]:
        if _OWN_LINE.match(line):
            joined.append(line)
        else:
            joined[-1] = f"{joined[-1].rstrip()} {line.strip()}"
    return "\n".join(joined)


def reflow_app(app: typer.Typer) -> None:
    """Reflow the help of ``app``, of each of its commands and of its sub-apps."""
    if isinstance(app.info.help, str):
        app.info.help = reflow(app.info.help)
    for command in app.registered_commands:
        text = command.help or (inspect.getdoc(command.callback) if command.callback else None)
        if text:
            command.help = reflow(text)
    for group in app.registered_groups:
        if isinstance(group.help, str):
            group.help = reflow(group.help)
        if group.typer_instance is not None:
            reflow_app(group.typer_instance)
