"""Acknowledgement links (pure core): HMAC-signed, expiring tokens naming one notification.

A token binds a notification (and so its recipient) and its signal to an expiry time, signed
with HMAC-SHA256 under the service's secret key. The key and the current time are passed
in, so signing and checking stay pure. Whether a token was already used is the store's
business (an acknowledgement is recorded once per signal).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from services.notify.core.errors import AckTokenExpiredError, AckTokenInvalidError

_VERSION = "a1"
_BODY_BYTES = 16 + 16 + 8  # notification id, signal id, expiry (unix seconds)


@dataclass(frozen=True, slots=True)
class AckClaims:
    """What a valid token says: which notification of which signal, valid until when."""

    notification_id: UUID
    signal_id: UUID
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, f"{_VERSION}.{body}".encode("ascii"), hashlib.sha256).digest()


def sign_ack(claims: AckClaims, *, key: bytes) -> str:
    """Return the URL-safe token for `claims` (no padding, no characters to escape)."""
    expires = int(claims.expires_at.timestamp()).to_bytes(8, "big")
    body = _b64(claims.notification_id.bytes + claims.signal_id.bytes + expires)
    return f"{_VERSION}.{body}.{_b64(_mac(key, body))}"


def verify_ack(token: str, *, key: bytes, now: datetime) -> AckClaims:
    """Check the signature first, then the expiry; return the claims.

    Raises:
        AckTokenInvalidError: malformed, or signed with another key, or altered.
        AckTokenExpiredError: genuine but past its expiry.

    """
    version, _, rest = token.partition(".")
    body, _, signature = rest.partition(".")
    try:
        raw, mac = _unb64(body), _unb64(signature)
    except (binascii.Error, ValueError) as exc:
        raise AckTokenInvalidError("acknowledgement token is malformed") from exc
    if version != _VERSION or len(raw) != _BODY_BYTES or not body.isascii():
        raise AckTokenInvalidError("acknowledgement token is malformed")
    # compare_digest: the time taken does not reveal how much of a forged MAC was right.
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise AckTokenInvalidError("acknowledgement token signature does not verify")
    expires_at = datetime.fromtimestamp(int.from_bytes(raw[32:], "big"), tz=UTC)
    if now >= expires_at:
        msg = f"acknowledgement link expired at {expires_at:%Y-%m-%d %H:%M} UTC"
        raise AckTokenExpiredError(msg)
    return AckClaims(UUID(bytes=raw[:16]), UUID(bytes=raw[16:32]), expires_at)
