"""``fidelite serve``: the REST API; ``fidelite apikey``: create, list, revoke API keys."""

from __future__ import annotations

import errno
import socket
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

import typer

from fidelite.cli.options import (
    PROGRAM_HELP,
    DbOption,
    FormatOption,
    OnlyProgramOption,
    TableJsonOption,
    program_id,
)
from fidelite.cli.output import (
    OutputFormat,
    console,
    err_console,
    fail,
    print_json,
    print_rows,
)


class LogLevel(StrEnum):
    """uvicorn's log levels."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


apikey_app = typer.Typer(
    help="API keys: create (the secret is shown once), list, revoke.\n\n"
    "Example: fidelite apikey create --program cafe --role integration --label till-7",
    no_args_is_help=True,
)


MAX_RATE = 1_000_000  # events per second per key: more is no limit at all
MAX_LEASE = 86_400  # a day
MAX_HEADER = 1_048_576  # bytes of a request's line and headers
MAX_HEADER_TIMEOUT = 300  # seconds to send them
MAX_CONNECTIONS = 100_000  # per worker


def serve(
    program: Path = typer.Option(
        ...,
        "--program",
        "-p",
        help="Program definition (YAML), read once at start-up: an edit takes effect "
        "when serve is started again.",
    ),
    db: str | None = DbOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port (1-65535)."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Server processes, each listening on its own socket (the kernel spreads "
        "connections over them); one that dies is started again, with the program "
        "read at start-up.",
    ),
    rate: float = typer.Option(
        0.0,
        "--rate-limit",
        min=0,
        max=MAX_RATE,
        help="Events and redemptions per second per key (0 = none; at most 1000000).",
    ),
    max_body: int = typer.Option(
        1_000_000, "--max-body-bytes", min=1, help="Largest request body (bytes, at least 1)."
    ),
    support_limit: int = typer.Option(
        5000,
        "--support-adjustment-limit",
        min=0,
        help="Largest adjustment a support key may make (points; 0: none).",
    ),
    lease: float = typer.Option(
        30.0,
        "--idempotency-lease",
        min=1,
        max=MAX_LEASE,
        help="Seconds (1-86400) a request with an Idempotency-Key counts as running; after "
        "a crash a retry with the key runs again once they have passed.",
    ),
    group: int = typer.Option(
        200,
        "--event-group",
        min=1,
        help="Most events from concurrent POST /v1/events requests applied in one "
        "transaction (group commit); 1 applies each on its own.",
    ),
    max_header: int = typer.Option(
        65_536,
        "--max-header-bytes",
        min=1024,
        max=MAX_HEADER,
        help="Largest request line and headers of a request (bytes, 1024-1048576): a "
        "connection sending more is answered 431 and closed.",
    ),
    header_timeout: float = typer.Option(
        10.0,
        "--header-timeout",
        min=1,
        max=MAX_HEADER_TIMEOUT,
        help="Seconds (1-300) a connection has to send a request's line and headers, "
        "from its opening or the request's first byte: 408 and closed otherwise.",
    ),
    max_connections: int = typer.Option(
        1000,
        "--max-connections",
        min=1,
        max=MAX_CONNECTIONS,
        help="Most connections each worker serves at once (1-100000): a request arriving "
        "while its worker holds more (its own included), or as many requests running, is "
        "answered 503.",
    ),
    log_level: LogLevel = typer.Option(
        LogLevel.warning, "--log-level", case_sensitive=False, help="uvicorn log level."
    ),
) -> None:
    """Serve the REST API (migrations run at start-up). OpenAPI at /docs and /openapi.json.

    The program file is read once, at start-up: every worker, including one started
    again after a crash, runs that version; an edit takes effect when serve is started
    again.

    Example: fidelite serve --program cafe.yaml --db postgresql+psycopg://localhost/fid --workers 2
    """
    from fidelite.api.app import Settings
    from fidelite.api.server import read_program, serve_config
    from fidelite.api.workers import WorkerStartError, check_free
    from fidelite.api.workers import serve as workers_serve
    from fidelite.cli.common import upgrade_database
    from fidelite.program.loader import ProgramError

    try:
        text, _definition = read_program(program)
    except ProgramError as exc:
        fail(str(exc), code="bad_program")
    upgrade_database(db).dispose()  # once, before the workers start
    settings = Settings(
        max_body_bytes=max_body,
        support_adjustment_limit=support_limit,
        rate_per_second=rate,
        rate_burst=max(rate, 1.0) * 2,
        idempotency_lease_seconds=lease,
        event_group=group,
        max_header_bytes=max_header,
        header_timeout=header_timeout,
        max_connections=max_connections,
        upgrade=False,
    )
    try:
        check_free(host, port)
    except OSError as exc:
        _cannot_listen(host, port, exc)
    # each worker listens on a socket of its own; the kernel spreads connections over them
    try:
        workers_serve(host, port, workers, log_level.value, serve_config(db, text, settings))
    except WorkerStartError as exc:
        fail(f"the server could not start: {exc}", code="cannot_start")


def _cannot_listen(host: str, port: int, exc: OSError) -> NoReturn:
    """Why the server cannot listen on ``host:port``, with a code of its own: a port
    another process holds (address_in_use), a host that is neither an address nor a
    name that resolves (invalid_host), anything else (cannot_listen: an address not on
    this machine, a port below 1024 without the right)."""
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror):
        fail(f"{where}: --host {host!r} is not an IP address nor a name that resolves "
             f"({exc.strerror or exc})", code="invalid_host")  # fmt: skip
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        fail(f"{where}: {reason}", code="address_in_use")
    fail(f"{where}: {reason}", code="cannot_listen")


@apikey_app.command("create")
def create(
    program: str = typer.Option(
        ..., "--program", "-p", help=f"The key's program. {PROGRAM_HELP}", callback=program_id
    ),
    role: str = typer.Option(..., "--role", help="admin, integration, analyst or support."),
    label: str = typer.Option(
        "",
        "--label",
        help="What the key is for (e.g. till-7): at most 200 characters, no control characters.",
    ),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Create a key; its secret is printed once and never stored.

    Example: fidelite apikey create --program cafe --role integration --label till-7
    """
    from fidelite.api.keys import ApiKeyError, create_key
    from fidelite.cli.common import upgrade_database

    database = upgrade_database(db, fmt)
    try:
        key, token = create_key(database, program, role, label)
    except ApiKeyError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    if fmt is OutputFormat.json:
        print_json({**asdict(key), "token": token})
    else:
        console.print(f"key {key.key_id} ({role}) for program {program}:\n{token}\n"
                      "Store it now: it cannot be shown again.")  # fmt: skip


KEY_COLUMNS = ["key_id", "program_id", "role", "label", "created_at", "revoked_at",
               "last_used_at"]  # fmt: skip


@apikey_app.command("list")
def list_(
    program: str | None = OnlyProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """List keys (never their secrets), with when each was last used (recorded at most
    once a minute; empty: not used since fidelite recorded it).

    Example: fidelite apikey list --program cafe --format json
    """
    from fidelite.api.keys import list_keys
    from fidelite.cli.common import open_migrated

    rows = [asdict(k) for k in list_keys(open_migrated(db, fmt), program)]
    print_rows(rows, fmt, title="API keys", columns=KEY_COLUMNS, free_text=("label",))
    if not rows and fmt is OutputFormat.table:
        which = "" if program is None else f" for program {program!r}"
        err_console.print(f"no API keys{which}", markup=False, highlight=False, soft_wrap=True)


@apikey_app.command("revoke")
def revoke(
    key_id: str = typer.Argument(
        ...,
        help="The key id (the part after fid_), or the whole token (fid_<id>_<secret>): "
        "its secret is checked, never printed.",
    ),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Revoke a key; requests with it are refused at once.

    Example: fidelite apikey revoke 3f9a1c2b7d4e
    """
    from fidelite.api.keys import ApiKeyError, revoke_key
    from fidelite.cli.common import open_migrated

    database = open_migrated(db, fmt)
    try:
        key = revoke_key(database, key_id)
    except ApiKeyError as exc:
        fail(str(exc), code="unknown_key", fmt=fmt)
    if fmt is OutputFormat.json:
        print_json(asdict(key))
    else:
        console.print(f"key {key.key_id} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S}")
