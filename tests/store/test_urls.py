"""Database URLs are shown without their password (messages, JSON answers, reports)."""

from __future__ import annotations

import pytest

from fidelite.analytics.programdb import database_name
from fidelite.store.urls import display_url, scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://postgres:secretpw@127.0.0.1/DB", "postgresql://postgres@127.0.0.1/DB"),
        ("postgresql+psycopg://app:p%40ss:w/rd@db.example:5433/shop?sslmode=require",
         "postgresql+psycopg://app@db.example:5433/shop?sslmode=require"),
        ("postgresql://:only@host/db", "postgresql://@host/db"),
        ("postgresql://app@host/db?sslmode=require&password=s3cret&x=1",
         "postgresql://app@host/db?sslmode=require&password=***&x=1"),
        ("postgresql://app@host:5432/db", "postgresql://app@host:5432/db"),
        ("postgresql://host:5432/db", "postgresql://host:5432/db"),
        ("sqlite:///shop.db", "sqlite:///shop.db"),
        ("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db"),  # a path, not a password
        ("shop.db", "shop.db"),
    ],
)  # fmt: skip
def test_display_url_leaves_the_password_out(url: str, shown: str) -> None:
    assert display_url(url) == shown
    assert database_name(url) == shown  # the analytics name databases the same way


def test_scrub_shows_each_url_written_in_a_message_without_its_password() -> None:
    message = "cannot reach postgresql://u:pw1@h/d (via postgresql+psycopg://u:pw1@h/d)"
    assert scrub(message, "postgresql://u:pw1@h/d", "postgresql+psycopg://u:pw1@h/d") == (
        "cannot reach postgresql://u@h/d (via postgresql+psycopg://u@h/d)"
    )
