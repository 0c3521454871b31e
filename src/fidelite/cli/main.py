"""The ``fidelite`` command: the root Typer app and its command groups."""

from __future__ import annotations

import typer

from fidelite import __version__

app = typer.Typer(
    name="fidelite",
    help="fidelite: run a loyalty program and measure loyalty.\n\n"
    "Example: fidelite db upgrade --db sqlite:///fidelite.db",
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


def _register() -> None:
    """Attach command groups. Each group lives in its own module under ``fidelite.cli``."""
    # Command groups are imported here (not at module top) so `fidelite --version`
    # stays fast and a broken optional group cannot break the others.
    from fidelite.cli import clv as clv_cli
    from fidelite.cli import db, demo, ledger, members
    from fidelite.cli import metrics as metrics_cli
    from fidelite.cli import report as report_cli

    app.command("demo")(demo.demo)
    app.add_typer(db.app, name="db")
    app.add_typer(members.app, name="member")
    app.add_typer(ledger.app, name="ledger")
    app.add_typer(metrics_cli.app, name="metrics")
    app.command("report")(report_cli.report)  # a single command, not a group

    from fidelite.cli import imports, program

    app.add_typer(program.app, name="program")
    app.add_typer(imports.app, name="import")
    app.add_typer(clv_cli.app, name="clv")

    from fidelite.cli import serve as serve_cli

    app.command("serve")(serve_cli.serve)
    app.add_typer(serve_cli.apikey_app, name="apikey")

    from fidelite.cli import webhooks as webhooks_cli

    app.add_typer(webhooks_cli.app, name="webhooks")

    from fidelite.cli import coupons, events, tiers

    app.add_typer(tiers.app, name="tier")
    app.add_typer(coupons.app, name="coupon")
    app.add_typer(events.app, name="event")

    from fidelite.cli.helptext import reflow_app

    reflow_app(app)


def main() -> None:
    """Console-script entry point."""
    _register()
    app()
