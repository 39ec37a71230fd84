"""The running notify service seen from another process, over NATS request/reply.

The supervised demo runs notify in its own process, so what it used to call in-process
(open alerts, acknowledge, delivery log, unsent count, flush the digests, the outbox) it
asks here. The notify DuckDB file keeps its one writer: the outbox comes back as a Parquet
snapshot that notify itself writes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
from nats.aio.client import Client as NatsClient

from services.notify.adapters.audit_export import OUTBOX_FILE, snapshot_subject
from services.notify.adapters.nats_requests import (
    ack_subject,
    flush_digests_subject,
    log_subject,
    state_subject,
)
from services.notify.core.errors import AckRejectedError

_TIMEOUT_S = 30.0  # notify's one DuckDB writer thread may be busy with a batch
_REFUSED = frozenset({403, 404, 409, 410})  # status_of(AckRejectedError) in notify's API


@dataclass(frozen=True, slots=True)
class AlertRef:
    """The alert's state, as far as the demo's duty officer reads it."""

    signal_id: UUID


@dataclass(frozen=True, slots=True)
class FirstEmail:
    """The alert's first email, as far as the demo's duty officer reads it."""

    message_id: str


@dataclass(frozen=True, slots=True)
class RemoteAlert:
    """An open U0 alert: the fields of notify's `OpenAlert` the duty officer uses."""

    state: AlertRef
    first: FirstEmail


class NotifyRequestError(RuntimeError):
    """Notify answered a request with an error other than a refused acknowledgement."""


class RemoteNotify:
    """Requests to the notify service of `namespace` on an open NATS connection."""

    def __init__(self, nc: NatsClient, namespace: str, *, data_dir: Path | None = None) -> None:
        self._nc = nc
        self._namespace = namespace
        #: notify's data dir: it writes snapshots only there (None: its default export root).
        self._data_dir = data_dir

    @property
    def acknowledger(self) -> RemoteNotify:
        """Itself: `by_person` mirrors notify's in-process `Acknowledger.by_person`."""
        return self

    async def open_alerts(self) -> list[RemoteAlert]:
        """Unacknowledged open U0 alerts, oldest first."""
        reply = await self._ask(state_subject(self._namespace), {})
        return [
            RemoteAlert(AlertRef(UUID(a["signal_id"])), FirstEmail(a["message_id"]))
            for a in reply["open_alerts"]
        ]

    async def unsent_count(self) -> int:
        """Notifications still intended and unconfirmed."""
        return int((await self._ask(state_subject(self._namespace), {}))["unsent"])

    async def by_person(self, signal_id: UUID, *, by: str, reason: str) -> dict[str, Any]:
        """Acknowledge an alert; AckRejectedError when notify refuses (already done, unknown)."""
        body = {"signal_id": str(signal_id), "by": by, "reason": reason}
        reply = await self._ask(ack_subject(self._namespace), body, refusals=True)
        acknowledgement: dict[str, Any] = reply["acknowledgement"]
        return acknowledgement

    async def delivery_log(
        self, *, signal_id: UUID | None = None, participant_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every attempt, reply, acknowledgement and escalation of a signal or participant."""
        signal = str(signal_id) if signal_id else None
        body = {"signal_id": signal, "participant_id": participant_id}
        reply = await self._ask(log_subject(self._namespace), body)
        entries: list[dict[str, Any]] = reply["entries"]
        return entries

    async def flush_digests(self) -> int:
        """Send every held digest now; return the rows moved."""
        return int((await self._ask(flush_digests_subject(self._namespace), {}))["moved"])

    async def notifications(self) -> list[dict[str, Any]]:
        """The outbox rows, from a snapshot notify writes into a temporary directory.

        The directory is made inside notify's data dir (notify writes nowhere else) and
        removed afterwards.
        """
        with tempfile.TemporaryDirectory(prefix="outbox-", dir=self._data_dir) as directory:
            body = {"directory": os.path.abspath(directory)}  # noqa: PTH100, ASYNC240 - no I/O
            reply = await self._ask(snapshot_subject(self._namespace), body)
            path = reply["files"][OUTBOX_FILE]["path"]
            con = duckdb.connect()  # in memory: reads the Parquet copy, never notify's file
            try:
                cursor = con.execute("SELECT * FROM read_parquet($path)", {"path": path})
                columns = [d[0] for d in cursor.description or ()]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            finally:
                con.close()

    async def _ask(
        self, subject: str, body: dict[str, Any], *, refusals: bool = False
    ) -> dict[str, Any]:
        message = await self._nc.request(subject, json.dumps(body).encode(), timeout=_TIMEOUT_S)
        reply: dict[str, Any] = json.loads(message.data)
        if "error" in reply:
            if refusals and reply.get("status") in _REFUSED:
                raise AckRejectedError(reply["error"])
            msg = f"notify refused {subject}: {reply['error']}"
            raise NotifyRequestError(msg)
        return reply
