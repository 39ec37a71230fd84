"""Read the log heads ingest published on NATS, for `audit verify --heads-from-nats` (shell).

A bundle carries a copy of the heads its export read (`ingest_heads.jsonl`), but whoever
re-chains the log can rewrite that copy too. Reading them from the anchors stream at verify
time (its deletes and purges are denied) takes the bundle's word out of the comparison.
"""

from __future__ import annotations

import asyncio

import nats
import nats.errors

from kit.nats_security import NatsClientSettings
from services.audit.core.errors import AuditError
from services.ingest.published.snapshot import read_heads


class HeadsUnavailableError(AuditError):
    """NATS could not be reached, or the published heads could not be read."""


async def published_heads(nats_url: str, namespace: str, *, wait: float = 10.0) -> list[bytes]:
    """Every head published for `namespace`, oldest first (empty: none was published).

    Credentials and TLS come from SAFETYMON_NATS_* (kit/nats_security.py), as for export.

    Raises:
        HeadsUnavailableError: the server is unreachable, refuses us, or does not answer.

    """

    async def quiet(exc: Exception) -> None:
        del exc  # connect raises; nats-py's callback would only repeat it

    try:
        nc = await asyncio.wait_for(
            nats.connect(
                nats_url.split(","), connect_timeout=min(wait, 5.0), allow_reconnect=False,
                max_reconnect_attempts=1, error_cb=quiet,
                **NatsClientSettings().nats_connect_options(),
            ),
            wait,
        )  # fmt: skip
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        msg = f"cannot reach NATS to read the published heads: {type(exc).__name__}"
        raise HeadsUnavailableError(msg) from exc
    try:
        return await read_heads(nc.jetstream(), namespace, wait=wait)
    except (TimeoutError, nats.errors.Error) as exc:
        msg = f"cannot read the published heads in {namespace}: {type(exc).__name__}"
        raise HeadsUnavailableError(msg) from exc
    finally:
        await nc.close()
