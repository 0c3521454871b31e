"""`--engine spark` on a machine where Spark cannot run (pyspark not installed, no Java)
is one clear error in the format asked for, exit 1 and nothing written, not a traceback:
the commands reach Spark from several places (metrics, report, program KPIs), and the
root command turns the engine's refusal into the error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NO_JAVA = (
    "the Spark engine cannot start: [JAVA_GATEWAY_EXITED] Java gateway process exited "
    "before sending its port number. (Spark needs Java 17: check JAVA_HOME and that "
    "`java -version` runs; or use --engine duckdb)"
)
NO_PYSPARK = (
    "the Spark engine needs the 'spark' extra: pip install 'fidelite[spark]' "
    "(or use --engine duckdb)"
)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from fidelite.cli.main import main; main()", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def tx(tmp_path: Path) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\na,2024-01-01,10\na,2024-02-01,5\n")
    return path


@pytest.fixture
def no_pyspark(tmp_path: Path) -> dict[str, str]:
    """An environment where `import pyspark` fails, as without the 'spark' extra."""
    fake = tmp_path / "fake" / "pyspark"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named pyspark')\n")
    paths = [str(fake.parent), *sys.path]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.mark.parametrize(
    "command",
    [["metrics", "retention", "--input", "{tx}"], ["report", "{tx}", "--out", "{out}"]],
)
def test_spark_without_pyspark_is_one_error(
    command: list[str], tx: Path, tmp_path: Path, no_pyspark: dict[str, str]
) -> None:
    out = tmp_path / "out"
    args = [a.format(tx=tx, out=out) for a in command]
    proc = _run([*args, "--engine", "spark", "--format", "json"], no_pyspark)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout) == {
        "error": {"code": "engine_unavailable", "message": NO_PYSPARK}
    }
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_spark_without_java_is_one_error(tx: Path) -> None:
    proc = _run(
        ["metrics", "retention", "--input", str(tx), "--engine", "spark"],
        {"JAVA_HOME": "/nonexistent"},
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"error [engine_unavailable] {NO_JAVA}" in proc.stderr
    assert "Traceback" not in proc.stderr
