"""The ``fidelite`` command: the root Typer app and its command groups."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from fidelite import __version__

_ARGV = "fidelite.argv"
# click's UsageError (an unknown or missing option, a bad value), whether typer uses
# click or its own copy of it (typer 0.2x vendors click as ``typer._click``).
_USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


def _asks_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON output (``-f json``, ``--format json``,
    ``--format=json``, ``-fjson``), read before click has parsed it."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-f", "--format") and i + 1 < len(args):
            if args[i + 1] == "json":
                return True
        elif arg in ("--format=json", "-fjson", "-f=json"):
            return True
    return False


_PYDANTIC_PREFIX = "Value error, "
_NOT_A = {
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "bool_parsing": "is not true or false",
}
"""How a value the option's type refuses is named, by the type of pydantic's error."""
_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "less_than_equal": ("at most", "le"),
    "greater_than": ("more than", "gt"),
    "less_than": ("less than", "lt"),
}
"""How a value out of an option's range is named (``must be at least 1, got 0``), by the
type of pydantic's error and the key of its limit."""


def _reword(exc: Exception) -> None:
    """A bad option value's message in our words, not pydantic's (typer checks values
    with pydantic): ``'abc' is not a whole number`` rather than ``Input should be a
    valid integer, unable to parse string as an integer``, and a check's own message
    without pydantic's ``Value error, `` before it."""
    message = getattr(exc, "message", None)
    if not isinstance(message, str):
        return
    errors = getattr(exc.__cause__, "errors", None)
    errors = errors() if callable(errors) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    wording = _NOT_A.get(str(first.get("type")))
    bound = _BOUNDS.get(str(first.get("type")))
    context = first.get("ctx")
    limits: dict[str, Any] = context if isinstance(context, dict) else {}
    if wording is not None and isinstance(first.get("input"), str):
        message = f"{first['input']!r} {wording}"
    elif bound is not None and bound[1] in limits:
        message = f"must be {bound[0]} {limits[bound[1]]}, got {first.get('input')}"
    elif message.startswith(_PYDANTIC_PREFIX):
        message = message.removeprefix(_PYDANTIC_PREFIX)
    exc.message = message  # type: ignore[attr-defined]


class _Root(TyperGroup):
    """The root group. With JSON asked for on the command line, a usage error click finds
    while parsing a command's options (an unknown option, a missing one, an option without
    its value) is the ``{"error": {"code": "usage", ...}}`` object on stdout, exit status
    2, as every other error is with ``--format json``, not click's box on stderr."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_ARGV] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as exc:
            _reword(exc)
            if not _asks_json(ctx.meta.get(_ARGV, [])):
                raise
            from fidelite.cli.output import OutputFormat, fail

            fail(exc.format_message(), code="usage", fmt=OutputFormat.json)  # type: ignore[attr-defined]
        except Exception as exc:
            # the analytics' engine missing on this machine (Spark without Java), or out
            # of memory or of temporary space: one error, in the format asked for,
            # wherever the command met it
            from fidelite.analytics.errors import EngineUnavailable
            from fidelite.analytics.resources import resource_failure

            args = ctx.meta.get(_ARGV, [])
            failure = resource_failure(exc, args)
            if not isinstance(exc, EngineUnavailable) and failure is None:
                raise
            from fidelite.cli.output import OutputFormat, fail

            asked = OutputFormat.json if _asks_json(args) else None
            if failure is not None:
                fail(failure.message, code=failure.code, fmt=asked)
            fail(str(exc), code="engine_unavailable", fmt=asked)


app = typer.Typer(
    cls=_Root,
    name="fidelite",
    help="fidelite: run a loyalty program and measure loyalty.\n\n"
    "Example: fidelite db upgrade --db sqlite:///fidelite.db",
    epilog="Exit status: 0 done, 1 an error (one line naming what is wrong; with --format "
    'json an {"error": ...} object on stdout), 2 a usage error, 130 interrupted '
    "(Ctrl-C), 141 when the reader of standard output closed early (fidelite ... | head), "
    "as yes | head.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fidelite {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """fidelite: run a loyalty program and measure loyalty."""


# Each command (or group) and the module under ``fidelite.cli`` that defines it, in
# registration order (``fidelite --help`` lists the single commands first, then the
# groups, each in this order). A module is imported only when its command is needed.
_COMMANDS: dict[str, str] = {
    "demo": "demo",
    "db": "db",
    "member": "members",
    "ledger": "ledger",
    "metrics": "metrics",
    "report": "report",
    "program": "program",
    "import": "imports",
    "clv": "clv",
    "serve": "serve",
    "apikey": "serve",
    "webhooks": "webhooks",
    "tier": "tiers",
    "coupon": "coupons",
    "event": "events",
    "rewards": "rewards",
}
_SINGLE = {"demo": "demo", "report": "report", "serve": "serve"}  # commands, not groups
_GROUP_ATTRIBUTE = {"apikey": "apikey_app"}  # groups whose Typer is not named ``app``
_registered: set[str] = set()


def _register(only: str | None = None) -> None:
    """Attach commands: all of them, or with ``only`` just that one.

    Each command lives in its own module under ``fidelite.cli``. Modules are imported
    here, not at module top: they pull in the ledger, the analytics engines or the
    server, which take seconds to import, and ``fidelite ledger balance`` needs none of
    the analytics. Registering twice is harmless (tests call this once per module).
    """
    from importlib import import_module

    for name, module_name in _COMMANDS.items():
        if (only is not None and name != only) or name in _registered:
            continue
        module = import_module(f"fidelite.cli.{module_name}")
        if name in _SINGLE:
            app.command(name)(getattr(module, _SINGLE[name]))
        else:
            app.add_typer(getattr(module, _GROUP_ATTRIBUTE.get(name, "app")), name=name)
        _registered.add(name)
    from fidelite.cli.helptext import reflow_app

    reflow_app(app)  # idempotent: texts reflowed before stay as they are


def _invoked(args: list[str]) -> str | None:
    """The command the arguments name, if it is one of ours; None otherwise (help, a
    typo), when every command is registered so that help lists all."""
    first = args[0] if args else ""
    return first if first in _COMMANDS else None


def main() -> None:
    """Console-script entry point."""
    import sys

    args = sys.argv[1:]
    if args != ["--version"]:  # the version needs no command
        _register(_invoked(args))
    app()
