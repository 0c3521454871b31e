"""Running the API under uvicorn: every worker of one ``fidelite serve`` builds its
application from the same configuration, which holds the program's *text* as
``serve`` read it once at start-up (:func:`read_program`), not the path of its file.

Invariant: the workers of one ``serve``, including those started again after a crash,
run exactly the program ``serve`` validated when it started; editing the program file
takes effect when ``serve`` is started again. (A worker that read the file itself
when it started would, after an edit, earn points by other rules than the workers
started before the edit.)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

from fidelite.api.app import Settings, create_app
from fidelite.program import ProgramDefinition
from fidelite.program.loader import Problem, ProgramError, not_utf8, parse_program

ENV = "FIDELITE_SERVE"


@dataclass(frozen=True)
class ProgramText:
    """A program file as read once: its name (for messages) and its text."""

    name: str
    text: str


def read_program(path: Path) -> tuple[ProgramText, ProgramDefinition]:
    """Read the program file once and validate that very text (raises
    :class:`ProgramError` with the messages of :func:`fidelite.program.load_program`)."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProgramError([Problem(name, 1, 1, "", f"cannot read: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column, message = not_utf8(data, exc)
        raise ProgramError([Problem(name, line, column, "", message)]) from None
    definition = parse_program(text, name=name)
    return ProgramText(name, text), definition


def serve_config(db: str | None, program: ProgramText, settings: Settings) -> str:
    """The configuration every worker builds its application from (JSON)."""
    return json.dumps({"db": db, "program": asdict(program), "settings": asdict(settings)})


def app_from_config(config: str) -> FastAPI:
    """The application of ``config`` (:func:`serve_config`): the program is parsed from
    the text it holds; the file it came from is not read again."""
    values = json.loads(config)
    program = ProgramText(**values["program"])
    definition = parse_program(program.text, name=program.name)
    return create_app(values["db"], definition, Settings(**values["settings"]))


def app_from_env() -> FastAPI:
    """uvicorn factory (``fidelite.api.server:app_from_env``): the configuration is in
    the environment variable ``FIDELITE_SERVE`` (uvicorn's own workers inherit it)."""
    return app_from_config(os.environ[ENV])
