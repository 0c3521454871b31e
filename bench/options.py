"""What the benches share about their command line: sizes that must be positive, a
PostgreSQL URL checked before any work starts, and which ``fidelite`` to run.

A size of 0 or less used to crash a bench halfway (a division by zero) or print a
negative rate; a bad ``--pg`` ended in a driver traceback. Each is now a usage error
(exit 2) that names the option, before anything is generated or created.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An ``argparse`` type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum}")
        return value

    return parse


def non_negative_int(text: str) -> int:
    """An ``argparse`` type: an integer of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def non_negative_float(text: str) -> float:
    """An ``argparse`` type: a finite number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def check_pg(parser: argparse.ArgumentParser, url: str, option: str = "--pg") -> None:
    """Refuse (usage error, exit 2) a PostgreSQL URL the bench cannot connect to."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    if not plain.startswith(("postgresql://", "postgres://")):
        parser.error(f"{option} {url}: not a PostgreSQL URL (postgresql://user@host:port/db)")
    try:
        with psycopg.connect(plain, connect_timeout=5):
            pass
    except Exception as exc:  # any driver error: bad host, port, user, database, syntax
        reason = " ".join(str(exc).split()) or type(exc).__name__
        parser.error(f"{option} {url}: cannot connect: {reason}")


def fidelite_command() -> list[str]:
    """The ``fidelite`` of the Python running the bench (the checkout's venv), found next
    to ``sys.executable``; another one on ``PATH`` only when there is none there."""
    beside = Path(sys.executable).parent / "fidelite"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("fidelite")
    if found is None:
        sys.exit(f"no fidelite command next to {sys.executable} nor on PATH")
    return [found]
