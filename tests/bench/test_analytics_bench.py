"""bench/analytics.py: a step whose process dies ends the bench instead of waiting for
ever; its temporary files are removed unless kept; sizes it cannot generate refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.support import assert_usage_error, run_bench


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analytics.py", "--rows", "5", "--customers", "10"],
         "--rows 5 is less than --customers 10: every customer has at least one transaction"),
        (["analytics.py", "--rows", "0", "--customers", "0", "--skip-baseline", "--skip-report"],
         "argument --rows: 0 must be at least 1"),
    ],
)  # fmt: skip
def test_sizes_it_cannot_generate_are_a_usage_error(
    args: list[str], message: str, tmp_path: Path
) -> None:
    assert_usage_error(args, message, tmp_path)


@pytest.mark.slow  # runs the bench script end to end
def test_a_step_that_fails_ends_the_bench(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet\n")
    work = tmp_path / "tmp"
    work.mkdir()
    args = ["analytics.py", "--data", str(bad), "--skip-baseline", "--skip-report"]
    done = run_bench(*args, tmp=work, timeout=90)
    assert done.returncode == 1
    assert done.stderr.endswith(
        "analytics bench: step fidelite_summary failed: its process ended with exit code 1"
        " and no result\n"
    )
    assert list(work.iterdir()) == []
    assert bad.read_text() == "not parquet\n"  # the user's file is left as it was


@pytest.mark.slow  # runs the bench script end to end
def test_its_files_are_removed_unless_kept(tmp_path: Path) -> None:
    args = ["analytics.py", "--rows", "300", "--customers", "30", "--skip-baseline"]
    done = run_bench(*args, tmp=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"customers": 30' in done.stdout
    assert list(tmp_path.iterdir()) == []
    kept = run_bench(*args, "--keep", tmp=tmp_path, timeout=120)
    assert kept.returncode == 0, kept.stderr
    (work,) = tmp_path.iterdir()
    assert f"kept {work}\n" in kept.stderr
    assert sorted(p.name for p in work.iterdir()) == ["report", "tx.parquet"]
