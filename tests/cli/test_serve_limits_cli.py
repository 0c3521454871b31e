"""``fidelite serve`` refuses limits that make no sense, as a usage error naming the
option (exit 2, before the database is touched), as it refuses a --port out of range.

They used to be accepted: ``--rate-limit inf`` answered every batch with 500 (an
OverflowError), ``nan`` or ``-3`` silently limited nothing, ``--max-body-bytes -1``
refused every request (413, even ``GET /healthz``), ``--support-adjustment-limit -5``,
an infinite ``--idempotency-lease`` (a 500 on every request with an Idempotency-Key)
and ``--log-level bogus`` (a traceback in every worker) were taken. The API's limiter
and body limit refuse such values too, whoever builds them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.api import Settings, create_app
from fidelite.api.limits import BodyLimit, RateLimiter
from fidelite.program import parse_program
from tests.cli.support import fidelite
from tests.cli.test_serve_listen_options_cli import PROGRAM

REFUSED = [
    ("--rate-limit", "inf", "must be at most 1000000.0, got inf"),
    ("--rate-limit", "nan", "must be at most 1000000.0, got nan"),
    ("--rate-limit", "-3", "must be at least 0.0, got -3"),
    ("--rate-limit", "1000001", "must be at most 1000000.0, got 1000001"),
    ("--max-body-bytes", "-1", "must be at least 1, got -1"),
    ("--max-body-bytes", "0", "must be at least 1, got 0"),
    ("--support-adjustment-limit", "-5", "must be at least 0, got -5"),
    ("--idempotency-lease", "inf", "must be at most 86400.0, got inf"),
    ("--idempotency-lease", "nan", "must be at most 86400.0, got nan"),
    ("--idempotency-lease", "0", "must be at least 1.0, got 0"),
    ("--log-level", "bogus", "'bogus' is not one of 'critical', 'error', 'warning', 'info', "
                             "'debug', 'trace'."),
]  # fmt: skip


@pytest.mark.parametrize(("option", "value", "message"), REFUSED)
def test_a_limit_that_makes_no_sense_is_a_usage_error(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    program, db = tmp_path / "shop.yaml", tmp_path / "api.db"
    program.write_text(PROGRAM, encoding="utf-8")
    # an address that cannot be listened on: were the value taken, serve would stop there
    proc = fidelite("serve", "-p", program, "--db", db, "--host", "999.1.1.1", option, value,
                    ok=False)  # fmt: skip
    said = " ".join(proc.stderr.replace("│", " ").split())
    assert proc.returncode == 2, said
    assert f"Invalid value for '{option}': {message}" in said
    assert "Traceback" not in proc.stderr
    assert not db.exists()  # refused before the database is created


@pytest.mark.parametrize(
    ("option", "value"),
    [("--rate-limit", "0"), ("--rate-limit", "1000000"), ("--max-body-bytes", "1"),
     ("--support-adjustment-limit", "0"), ("--idempotency-lease", "86400"),
     ("--log-level", "INFO")],
)  # fmt: skip
def test_the_edges_of_each_range_are_taken(tmp_path: Path, option: str, value: str) -> None:
    program, db = tmp_path / "shop.yaml", tmp_path / "api.db"
    program.write_text(PROGRAM, encoding="utf-8")
    proc = fidelite("serve", "-p", program, "--db", db, "--host", "999.1.1.1", option, value,
                    ok=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("error [invalid_host] cannot listen on 999.1.1.1:8000:")
    assert db.exists()  # the options were taken: serve got as far as listening


@pytest.mark.parametrize(
    ("rate", "burst", "message"),
    [(float("inf"), 2.0, "rate limit must be 0 (none) or a positive number, not inf"),
     (float("nan"), 2.0, "rate limit must be 0 (none) or a positive number, not nan"),
     (-3.0, 2.0, "rate limit must be 0 (none) or a positive number, not -3.0"),
     (5.0, float("inf"), "rate limit burst must be a number of at least 1, not inf"),
     (5.0, float("nan"), "rate limit burst must be a number of at least 1, not nan"),
     (5.0, 0.5, "rate limit burst must be a number of at least 1, not 0.5")],
)  # fmt: skip
def test_the_rate_limiter_refuses_what_would_limit_nothing_or_break(
    rate: float, burst: float, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        RateLimiter(rate, burst)
    assert str(raised.value) == message


def test_a_finite_rate_limit_still_caps_a_batch_and_none_means_none() -> None:
    assert RateLimiter(5.0, 10.0).most_per_call() == 10
    assert RateLimiter(0.0, float("nan")).most_per_call() is None  # no limit: burst unused


def test_the_body_limit_refuses_a_limit_below_one_byte() -> None:
    with pytest.raises(ValueError) as raised:
        BodyLimit(app=None, max_bytes=-1)  # type: ignore[arg-type]
    assert str(raised.value) == "the largest request body must be at least 1 byte, not -1"


def test_an_app_with_an_infinite_rate_limit_is_not_built() -> None:
    settings = Settings(rate_per_second=float("inf"), rate_burst=float("inf"))
    with pytest.raises(ValueError) as raised:
        create_app("sqlite://", parse_program(PROGRAM), settings)
    assert str(raised.value) == "rate limit must be 0 (none) or a positive number, not inf"
