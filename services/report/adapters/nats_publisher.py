"""Publish `ReportIssued` facts on JetStream for notify to route (adapters layer).

The report service owns the `<NS>_REPORTS` stream (subjects `<ns>.report.>`) and creates it
if missing, with the same deny-delete/deny-purge settings as the other streams. The event id
is the `Nats-Msg-Id`, so re-issuing the same report is dropped as a duplicate.
"""

from __future__ import annotations

import json

import nats

from kit.jetstream import Outgoing, ensure_stream, publish_confirmed
from kit.nats_security import NatsClientSettings
from schemas import ReportIssued, Subjects
from schemas.subjects import DUPLICATE_WINDOW_SECONDS
from services.report.core.errors import PublishError


class NatsReportPublisher:
    """`ReportPublisher` on a NATS server with JetStream."""

    def __init__(self, nats_url: str, subjects: Subjects) -> None:
        self._url = nats_url
        self._subjects = subjects

    async def publish(self, fact: ReportIssued) -> None:
        """Publish one fact, confirmed by JetStream."""
        data = json.dumps(fact.model_dump(mode="json"), sort_keys=True).encode("utf-8")
        message = Outgoing(self._subjects.report_subject(), data, str(fact.event_id))
        try:
            nc = await nats.connect(
                self._url.split(","),
                connect_timeout=5,
                max_reconnect_attempts=1,
                # the same SAFETYMON_NATS_* credentials and TLS as every other service
                **NatsClientSettings().nats_connect_options(),
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            raise PublishError(f"cannot connect to NATS: {type(exc).__name__}") from exc
        try:
            js = nc.jetstream()
            stream = self._subjects.reports_stream
            await ensure_stream(
                js,
                name=stream,
                subjects=self._subjects.reports_filter,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
            )
            await publish_confirmed(js, [message], stream=stream)
        except (TimeoutError, nats.errors.Error) as exc:
            raise PublishError(f"JetStream did not confirm the report: {exc!r}") from exc
        finally:
            await nc.close()
