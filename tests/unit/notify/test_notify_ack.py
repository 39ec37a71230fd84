"""Acknowledgement tokens: signed, expiring, bound to one notification; forgeries refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.notify.core.ack import AckClaims, sign_ack, verify_ack
from services.notify.core.errors import AckTokenExpiredError, AckTokenInvalidError

KEY = b"k" * 32
NOW = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def _claims(expires_in: timedelta = timedelta(hours=72)) -> AckClaims:
    return AckClaims(uuid4(), uuid4(), NOW + expires_in)


def test_a_genuine_token_returns_its_claims() -> None:
    claims = _claims()

    token = sign_ack(claims, key=KEY)

    assert verify_ack(token, key=KEY, now=NOW) == claims
    assert token.isascii()
    assert all(c.isalnum() or c in "-_." for c in token)  # safe in a URL as it is


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = sign_ack(_claims(), key=b"another key")

    with pytest.raises(AckTokenInvalidError, match="signature"):
        verify_ack(token, key=KEY, now=NOW)


def test_changing_the_claims_breaks_the_signature() -> None:
    version, _body, mac = sign_ack(_claims(), key=KEY).split(".")
    other_body = sign_ack(_claims(), key=KEY).split(".")[1]

    with pytest.raises(AckTokenInvalidError):
        verify_ack(f"{version}.{other_body}.{mac}", key=KEY, now=NOW)


@pytest.mark.parametrize("token", ["", "a1", "a1..", "a1.!!!.xx", "zz.AAAA.AAAA", "a1.AAAA.AAAA"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(AckTokenInvalidError):
        verify_ack(token, key=KEY, now=NOW)


def test_an_expired_token_is_refused_even_though_genuine() -> None:
    token = sign_ack(_claims(expires_in=timedelta(seconds=1)), key=KEY)

    assert verify_ack(token, key=KEY, now=NOW)
    with pytest.raises(AckTokenExpiredError):
        verify_ack(token, key=KEY, now=NOW + timedelta(seconds=1))


def test_generated_key_is_private_to_the_owner_and_kept_across_restarts(tmp_path) -> None:
    from services.notify.adapters.http_server import load_or_create_secret

    path = tmp_path / "ack.secret"

    first = load_or_create_secret(path)
    again = load_or_create_secret(path)

    assert first == again
    assert len(first) == 64
    assert path.stat().st_mode & 0o777 == 0o600
