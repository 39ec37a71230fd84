"""Alert rows of the notify DuckDB file (adapters layer): intake, acknowledgement, escalation.

Functions here run on the store's writer thread inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import duckdb
import pyarrow as pa

from schemas import Urgency
from services.notify.adapters import _duckdb_sql as sql
from services.notify.core.errors import (
    AlertClosedError,
    AlreadyAcknowledgedError,
    UnknownAlertError,
)
from services.notify.ports import DeliveryLogRow, SignalNotifications

_TS = pa.timestamp("us", tz="UTC")


def insert_alerts(
    con: duckdb.DuckDBPyConnection, items: Sequence[SignalNotifications], now: datetime
) -> None:
    """Open an alert per new U0/U1 signal; close the ones an update supersedes.

    Alerts are opened first: a signal and its retraction in one batch must end closed.
    """
    wanted = [item for item in items if item.wants_ack and item.plans]
    if wanted:
        _open_alerts(con, wanted, now)
    for item in items:
        if item.closes is not None:
            con.execute(sql.CLOSE_ALERT, {"id": item.closes, "as": item.closes_as})


def _open_alerts(
    con: duckdb.DuckDBPyConnection, wanted: Sequence[SignalNotifications], now: datetime
) -> None:
    text = pa.string()
    table = pa.table({
        "signal_id": pa.array([str(i.signal_id) for i in wanted], text),
        "first_notification_id": pa.array([str(i.plans[0].notification_id) for i in wanted], text),
        "participant_id": pa.array([i.plans[0].participant_id for i in wanted], text),
        "urgency": pa.array([i.plans[0].urgency.value for i in wanted], text),
        "raised_at": pa.array([now] * len(wanted), _TS),
        "escalation_level": pa.array([0] * len(wanted), pa.int32()),
        "closed": pa.array([False] * len(wanted), pa.bool_()),
    })  # fmt: skip
    con.register("arrow_alerts", table)
    try:
        con.execute(sql.INSERT_ALERT)
    finally:
        con.unregister("arrow_alerts")


def check_acknowledgeable(con: duckdb.DuckDBPyConnection, signal_id: UUID) -> UUID:
    """Return the alert's first notification id, or say why it cannot be acknowledged."""
    row = con.execute(sql.ALERT, {"id": signal_id}).fetchone()
    if row is None:
        raise UnknownAlertError.for_signal(signal_id)
    first, acknowledged_at, by, closed, closed_as = row
    if acknowledged_at is not None:
        when = f"{acknowledged_at:%Y-%m-%d %H:%M:%S} UTC"
        msg = f"signal {signal_id} was already acknowledged by {by} at {when}"
        raise AlreadyAcknowledgedError(msg)
    if closed:
        # A link in an old email must not acknowledge what the rules took back.
        how = {"retracted": "was retracted", "updated": "was superseded by an update"}.get(
            closed_as or "", "was retracted or superseded by an update"
        )
        msg = f"signal {signal_id} {how}: its alert is closed and needs no acknowledgement"
        raise AlertClosedError(msg)
    return UUID(str(first))


def log_rows(rows: Sequence[tuple[Any, ...]]) -> list[DeliveryLogRow]:
    """Shape audit rows as the delivery log: one line per fact, payload details flattened.

    The details are read from each fact's stored JSON by name (`_LOG_FIELDS`), as its
    schema wrote them, so the row is built untyped and declared a `DeliveryLogRow` once.
    """
    out = []
    for seq, event_type, recorded_at, notification_id, signal_id, wire in rows:
        fact = json.loads(wire)
        payload = fact.get("payload", {})
        out.append(cast("DeliveryLogRow", {
            "seq": seq,
            "at": recorded_at.isoformat(),
            "event_type": event_type,
            "signal_id": str(signal_id),
            "notification_id": str(notification_id),
            "participant_id": fact.get("participant_id"),
            "site_id": fact.get("site_id"),
            "actor": fact.get("actor"),
            **{k: payload[k] for k in _LOG_FIELDS if payload.get(k) is not None},
            **({"permanent": fact["permanent"]} if "permanent" in fact else {}),
        }))  # fmt: skip
    return out


_LOG_FIELDS = ("role", "address", "urgency", "attempt", "smtp_reply", "error", "by", "reason",
               "level", "to_roles")  # fmt: skip


def urgency_of(value: str) -> Urgency:
    """Decode a stored urgency."""
    return Urgency(value)
