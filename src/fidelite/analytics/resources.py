"""The error a command gives when an engine runs out of memory or of temporary space.

DuckDB stops a query past its memory limit when what is left cannot be spilled to its
temporary directory (an operator that cannot spill, or a full disk). Its exception says
so in SQL terms (``SET memory_limit``), which no fidelite user types: the error here
names the limit in force, where it came from and how to change it (``--memory-limit``
of ``fidelite report``, ``FIDELITE_MEMORY_LIMIT``), and that spilling needs free space
in the temporary directory. Spark's Java heap running out is the same kind of error.

:func:`resource_failure` reads an exception met anywhere in a command (loading the
inputs or computing a metric) and gives the error's code and message, or ``None`` for
any other exception. It imports no engine: an engine's exception can only come from an
engine already imported.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

MEMORY_OPTION = "--memory-limit"


@dataclass(frozen=True)
class ResourceFailure:
    """What a command says when an engine ran out of memory or temporary space: the
    error's code (``out_of_memory``, or ``io`` for a full temporary directory) and
    message."""

    code: str
    message: str


def resource_failure(exc: BaseException, args: Sequence[str]) -> ResourceFailure | None:
    """The error for ``exc``, raised by the command run with ``args`` (the command line
    after ``fidelite``), when it is an engine out of memory or of temporary space."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None:
        if isinstance(exc, duckdb.OutOfMemoryException):
            return _duckdb_failure(str(exc), args)
        if isinstance(exc, duckdb.IOException) and _spill_full(str(exc)):
            return _duckdb_failure(str(exc), args)
    if _java_out_of_memory(exc):
        return ResourceFailure(
            "out_of_memory",
            "out of memory: Spark's Java heap ran out (java.lang.OutOfMemoryError); give "
            "Spark more with SPARK_DRIVER_MEMORY=4g (in the environment), or use --engine "
            "duckdb. Nothing was written.",
        )
    return None


def _spill_full(message: str) -> bool:
    """Whether a DuckDB I/O error is its temporary directory's disk being full."""
    from fidelite.analytics.io import SPILL_PREFIX

    return SPILL_PREFIX in message and "space" in message.lower()


def _duckdb_failure(message: str, args: Sequence[str]) -> ResourceFailure:
    from fidelite.analytics.io import MEMORY_ENV, SPILL_PREFIX, memory_in_force

    report = bool(args) and args[0] == "report"
    change = (
        f"{MEMORY_OPTION} (e.g. {MEMORY_OPTION} 4GB) or {MEMORY_ENV}"
        if report
        else f"{MEMORY_ENV} (e.g. {MEMORY_ENV}=4GB in the environment)"
    )
    in_force = memory_in_force()
    if in_force is None:  # not a connection a load limited: DuckDB's own limit
        limit, spill = "DuckDB's own memory limit", tempfile.gettempdir()
    else:
        limit, spill = f"the memory limit of {in_force[0]} ({_origin(args)})", in_force[1]
    where = os.path.dirname(spill.rstrip(os.sep)) or spill
    # DuckDB's words for a temporary directory it could not spill to: its disk is full
    # ("failed to offload data block ... 'max_temp_directory_size' setting"), or it
    # could not write a spilled block
    full = any(w in message for w in ("offload", "max_temp_directory_size")) or (
        "space" in message.lower() and SPILL_PREFIX in message
    )
    if full:
        return ResourceFailure(
            "io",
            f"out of temporary space: DuckDB went past {limit} and spilled to a temporary "
            f"directory in {where}, whose disk is full; free space there, point TMPDIR "
            f"at a disk with room, or raise the memory limit with {change}. Nothing was "
            "written.",
        )
    return ResourceFailure(
        "out_of_memory",
        f"out of memory: DuckDB needed more than {limit}; raise it with {change}. Past "
        f"the limit DuckDB spills to a temporary directory in {where} (set by TMPDIR), "
        "which needs free space. Nothing was written.",
    )


def _origin(args: Sequence[str]) -> str:
    """Where the memory limit in force came from."""
    if (
        args
        and args[0] == "report"
        and any(a == MEMORY_OPTION or a.startswith(f"{MEMORY_OPTION}=") for a in _options(args))
    ):
        return f"set by {MEMORY_OPTION}"
    from fidelite.analytics.io import MEMORY_ENV

    return f"set by {MEMORY_ENV}" if os.environ.get(MEMORY_ENV) else "the default"


def _options(args: Sequence[str]) -> Sequence[str]:
    """The arguments before ``--`` (after it every argument is a value)."""
    return args[: list(args).index("--")] if "--" in args else args


def _java_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a Spark (Py4J) error for a Java heap that ran out."""
    module = type(exc).__module__ or ""
    spark = module.startswith(("py4j", "pyspark"))
    return spark and "java.lang.OutOfMemoryError" in str(exc)
