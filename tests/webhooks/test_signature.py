"""Signatures: what the worker sends verifies; anything altered, stale or malformed fails."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from fidelite.webhooks import SignatureError, sign, verify

SECRET = "whsec_test_secret_0123456789"
BODY = b'{"data":{"member":"ann"},"id":"1","type":"member.created"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, BODY, header, now=1_700_000_000) == 1_700_000_000


def test_tolerance_bounds_the_age_both_ways() -> None:
    header = sign(SECRET, BODY, 1_000)
    assert verify(SECRET, BODY, header, now=1_300) == 1_000  # exactly 300 s: accepted
    for now in (1_301, 699):
        with pytest.raises(SignatureError, match="tolerance 300s"):
            verify(SECRET, BODY, header, now=now)


@pytest.mark.parametrize(
    ("secret", "body", "header", "message"),
    [
        ("other-secret-0123456789", BODY, None, "no signature matches"),
        (SECRET, BODY + b" ", None, "no signature matches"),
        (SECRET, BODY, "", "missing Fidelite-Signature"),
        (SECRET, BODY, "v1=abc", "expected t=<unix>,v1=<hex>"),
        (SECRET, BODY, "t=abc,v1=00", "timestamp 'abc' is not an integer"),
    ],
)
def test_wrong_signatures_are_refused(
    secret: str, body: bytes, header: str | None, message: str
) -> None:
    sent = sign(SECRET, BODY, 5_000) if header is None else header
    with pytest.raises(SignatureError, match=message):
        verify(secret, body, sent, now=5_000)


def test_any_of_several_v1_values_may_match_during_rotation() -> None:
    good = sign(SECRET, BODY, 42).split(",")[1]
    assert verify(SECRET, BODY, f"t=42,v1={'0' * 64},{good}", now=42) == 42
