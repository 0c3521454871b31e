"""DuckDB out of memory (past `--memory-limit` / FIDELITE_MEMORY_LIMIT, with nothing left it
can spill) or of temporary space is one error naming the limit in force and how to change
it, in the format asked for (exit 1), not a traceback nor a "cannot read the file"; and
`fidelite report` leaves its --out folder as it was."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.analytics.io import limit_memory
from fidelite.analytics.resources import ResourceFailure, resource_failure
from fidelite.cli.main import _register, app

_register()

TMP = tempfile.gettempdir()
SPILL = f"Past the limit DuckDB spills to a temporary directory in {TMP} (set by TMPDIR), "


def _report_message(limit: str, origin: str) -> str:
    return (
        f"out of memory: DuckDB needed more than the memory limit of {limit} ({origin}); "
        "raise it with --memory-limit (e.g. --memory-limit 4GB) or FIDELITE_MEMORY_LIMIT. "
        f"{SPILL}which needs free space. Nothing was written."
    )


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 purchases of 50,000 customers over a year: a few MB, more than 12MB of
    DuckDB memory to report on (a report of them needs about 32MB)."""
    rng = np.random.default_rng(1)
    n = 200_000
    seconds = rng.integers(0, 365 * 24 * 3600, n).astype("timedelta64[s]")
    stamps = (np.datetime64("2024-01-01") + seconds).astype("datetime64[us]")
    path = tmp_path_factory.mktemp("oom") / "tx.parquet"
    table = pa.table({
        "customer_id": pa.array([f"c{i}" for i in rng.integers(0, 50_000, n)]),
        "timestamp": pa.array(stamps),
        "amount": rng.random(n) * 100,
    })  # fmt: skip
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("limit", ["4MB", "12MB"])  # past it loading, computing the metrics
def test_report_out_of_memory_is_one_json_error_and_writes_nothing(
    transactions: Path, tmp_path: Path, limit: str
) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.json").write_text("older report", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["report", str(transactions), "--out", str(out), "--memory-limit", limit, "-f", "json"],
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert json.loads(result.stdout) == {
        "error": {
            "code": "out_of_memory",
            "message": _report_message(limit, "set by --memory-limit"),
        }
    }
    assert result.stderr == ""
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text(encoding="utf-8") == "older report"


def test_report_out_of_memory_in_text_names_the_environment_limit(
    transactions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIDELITE_MEMORY_LIMIT", "12MB")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(transactions), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error [out_of_memory] {_report_message('12MB', 'set by FIDELITE_MEMORY_LIMIT')}\n"
    )
    assert not out.exists()


def test_metrics_out_of_memory_is_one_json_error(
    transactions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIDELITE_MEMORY_LIMIT", "4MB")
    result = CliRunner().invoke(app, ["metrics", "rfm", "--input", str(transactions), "-f", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "error": {
            "code": "out_of_memory",
            "message": "out of memory: DuckDB needed more than the memory limit of 4MB (set by "
            "FIDELITE_MEMORY_LIMIT); raise it with FIDELITE_MEMORY_LIMIT (e.g. "
            f"FIDELITE_MEMORY_LIMIT=4GB in the environment). {SPILL}which needs free space. "
            "Nothing was written.",
        }
    }


def test_a_full_temporary_directory_is_an_io_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What DuckDB raises when the disk of its temporary directory is full: an out of
    memory error saying it could not offload a block, or an I/O error writing to it."""
    monkeypatch.delenv("FIDELITE_MEMORY_LIMIT", raising=False)
    con = duckdb.connect()
    limit_memory(con, "20MB")
    spill = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    con.close()
    expected = ResourceFailure(
        "io",
        "out of temporary space: DuckDB went past the memory limit of 20MB (set by "
        f"--memory-limit) and spilled to a temporary directory in {TMP}, whose disk is full; "
        "free space there, point TMPDIR at a disk with room, or raise the memory limit with "
        "--memory-limit (e.g. --memory-limit 4GB) or FIDELITE_MEMORY_LIMIT. Nothing was "
        "written.",
    )
    offload = duckdb.OutOfMemoryException(
        "Out of Memory Error: failed to offload data block of size 32.0 KiB (1.7 MiB/1.7 MiB "
        "used).\nThis limit was set by the 'max_temp_directory_size' setting."
    )
    args = ["report", "tx.parquet", "--out", "r", "--memory-limit", "20MB"]
    assert resource_failure(offload, args) == expected
    written = duckdb.IOException(
        f'IO Error: Could not write file "{spill}/duckdb_temp_storage-0.tmp": No space left '
        "on device"
    )
    assert resource_failure(written, args) == expected
    # any other I/O error is not ours to word (the input file's, say)
    other = duckdb.IOException('IO Error: No files found that match the pattern "x.parquet"')
    assert resource_failure(other, args) is None
    assert resource_failure(ValueError("Out of Memory"), args) is None


def test_spark_java_heap_out_of_memory_advises_driver_memory() -> None:
    """Py4J's error for a Java heap that ran out (a Spark job's OutOfMemoryError)."""
    Py4JError = pytest.importorskip("py4j.protocol").Py4JError  # the 'spark' extra's

    heap = Py4JError(
        "An error occurred while calling o57.collectToPython.\n: java.lang.OutOfMemoryError: "
        "Java heap space"
    )
    assert resource_failure(heap, ["metrics", "rfm", "--engine", "spark"]) == ResourceFailure(
        "out_of_memory",
        "out of memory: Spark's Java heap ran out (java.lang.OutOfMemoryError); give Spark "
        "more with SPARK_DRIVER_MEMORY=4g (in the environment), or use --engine duckdb. "
        "Nothing was written.",
    )
    other = Py4JError("An error occurred while calling o57.collectToPython")
    assert resource_failure(other, ["metrics", "rfm", "--engine", "spark"]) is None
