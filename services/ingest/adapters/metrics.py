"""Prometheus metrics and readiness of the ingest service (adapters layer).

Counted where submissions are answered (the HTTP API and `IngestService.submit`), read from
the log and the relay at scrape time. Clock ticks are appended by the service itself and
are not counted as accepted submissions; they do move the chain head.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from kit.metrics import Checks, ProgressWatch, nats_checks

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient

    from services.ingest.app import Outcome, Relay
    from services.ingest.ports import EventLog

Reason = Literal["duplicate", "conflict", "validation", "out_of_site"]
#: Why a submission was not appended. `duplicate` is answered 200 (the first copy stands),
#: the others are refusals: a conflicting key, invalid content, another site's participant.
REASONS: Final[tuple[Reason, ...]] = ("duplicate", "conflict", "validation", "out_of_site")


class IngestMetrics:
    """The ingest service's metrics, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "safetymon_ingest_facts_accepted",
            "Submitted facts appended to the log.",
            registry=registry,
        )
        self.rejected = Counter(
            "safetymon_ingest_facts_rejected",
            "Submitted facts not appended, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:  # every series exists from the start, so rate() sees its 0
            self.rejected.labels(reason)
        self.head_seq = Gauge(
            "safetymon_ingest_chain_head_seq",
            "Sequence number of the last entry of the hash-chained log.",
            registry=registry,
        )
        self.confirmed_seq = Gauge(
            "safetymon_ingest_relay_confirmed_seq",
            "Highest log sequence below which JetStream has confirmed every entry.",
            registry=registry,
        )
        self.backlog = Gauge(
            "safetymon_ingest_relay_backlog",
            "Log entries appended and not yet confirmed by JetStream (head minus confirmed).",
            registry=registry,
        )

    def count(self, outcomes: Sequence[Outcome]) -> None:
        """Count one answered submission batch."""
        accepted = 0
        for outcome in outcomes:
            if outcome.status == "accepted":
                accepted += 1
            elif outcome.status == "duplicate":
                self.rejected.labels("duplicate").inc()
            else:
                self.rejected.labels("conflict" if outcome.conflict else "validation").inc()
        if accepted:
            self.accepted.inc(accepted)

    def out_of_site(self, items: int) -> None:
        """Count a batch refused whole because items lie outside the submitter's site."""
        self.rejected.labels("out_of_site").inc(items)


class IngestProbe:
    """Scrape-time gauges and readiness of a started ingest service."""

    def __init__(
        self,
        metrics: IngestMetrics,
        *,
        log: EventLog,
        relay: Relay,
        nc: NatsClient,
        stream_probe: Callable[[], Awaitable[object]],
    ) -> None:
        self._metrics = metrics
        self._log = log
        self._relay = relay
        self._nc = nc
        self._stream_probe = stream_probe
        self._watch = ProgressWatch()

    async def refresh(self) -> None:
        """Set the head, confirmed position and backlog gauges."""
        head = (await self._log.head()).seq
        confirmed = self._relay.position
        self._metrics.head_seq.set(head)
        self._metrics.confirmed_seq.set(confirmed)
        self._metrics.backlog.set(max(0, head - confirmed))

    async def ready(self) -> Checks:
        """NATS connected, the facts stream answers, the relay is not stuck on a backlog."""
        checks = await nats_checks(self._nc, self._stream_probe, what="facts_stream")
        head = (await self._log.head()).seq
        position = self._relay.position
        checks["relay"] = self._watch.check(waiting=head - position, position=position)
        return checks
