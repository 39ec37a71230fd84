"""Subject, stream and durable names shared by the services — names only, no I/O.

A namespace keeps deployments (and test runs) that share one NATS server apart:
namespace "safetymon" gives stream SAFETYMON_FACTS and subjects safetymon.ingest.<type>.v1.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

DEFAULT_NAMESPACE: Final = "safetymon"
#: How long JetStream remembers a Nats-Msg-Id; consumers dedupe by event id beyond it.
DUPLICATE_WINDOW_SECONDS: Final = 3600.0
RULES_DURABLE: Final = "rules-evaluator"
#: Fact types that can raise a U0/U1 alert on their own (an SAE, a death, an AE upgrade, a
#: correction of one). They are served ahead of other participants' backlogs: by ingest's
#: relay and by the rules consumer, always after their own participant's earlier facts.
#: Labs can reach U0 too (grade 4) but arrive in bulk; they are served fairly, not first.
URGENT_EVENT_TYPES: Final = frozenset(
    {"adverse_event_reported", "adverse_event_updated", "death_recorded", "fact_corrected"}
)
NOTIFY_DURABLE: Final = "notify-router"
#: Notify's durable on the reports stream: it emails each issued DSMB report.
NOTIFY_REPORTS_DURABLE: Final = "notify-reports"
#: The console's durables: it projects facts, signals and notify's delivery facts.
CONSOLE_FACTS_DURABLE: Final = "console-facts"
CONSOLE_SIGNALS_DURABLE: Final = "console-signals"
CONSOLE_NOTIFY_DURABLE: Final = "console-notify"
#: Most partitions a deployment may split its facts into (one rules durable and file each).
MAX_PARTITIONS: Final = 256


def partition_of(trial_id: str, participant_id: str, partitions: int) -> int:
    """The partition (0 .. partitions-1) of a participant: stable across processes and hosts.

    sha256 of "trial<US>participant", first 8 bytes, modulo the count: Python's `hash()` is
    salted per process, and the audit must be able to recompute ownership offline.
    """
    _check_partitions(partitions)
    digest = hashlib.sha256(f"{trial_id}\x1f{participant_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def rules_durable(partition: int, partitions: int) -> str:
    """The rules consumer of one partition; the single-partition name is the historical one.

    The count is part of the name (and of the DuckDB file's): a deployment that changes
    its partition count gets new durables and files instead of mixing two layouts.
    """
    _check_partition(partition, partitions)
    return RULES_DURABLE if partitions == 1 else f"{RULES_DURABLE}-p{partition}-of-{partitions}"


def rules_file(partition: int, partitions: int) -> str:
    """The DuckDB file name of one partition's rules state, positions and outbox."""
    _check_partition(partition, partitions)
    return "rules.duckdb" if partitions == 1 else f"rules-p{partition}-of-{partitions}.duckdb"


def partition_snapshot_subject(base: str, partition: int, partitions: int) -> str:
    """Where the owner of one partition answers audit snapshot requests (`base` + `.p<k>-of-<n>`).

    `base` is the rules' snapshot subject; with one partition it is used as it is.
    """
    _check_partition(partition, partitions)
    return base if partitions == 1 else f"{base}.p{partition}-of-{partitions}"


def _check_partitions(partitions: int) -> None:
    if not 1 <= partitions <= MAX_PARTITIONS:
        msg = f"partitions must be 1..{MAX_PARTITIONS}, not {partitions}"
        raise ValueError(msg)


def _check_partition(partition: int, partitions: int) -> None:
    _check_partitions(partitions)
    if not 0 <= partition < partitions:
        msg = f"partition must be 0..{partitions - 1}, not {partition}"
        raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Subjects:
    """Names derived from one namespace (lower-case letters, digits, '_')."""

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if not self.namespace or not all(c.isalnum() or c == "_" for c in self.namespace):
            msg = f"namespace {self.namespace!r} must be letters, digits or '_'"
            raise ValueError(msg)

    @property
    def facts_stream(self) -> str:
        """Stream holding every arriving fact."""
        return f"{self.namespace.upper()}_FACTS"

    @property
    def facts_filter(self) -> str:
        """Subject filter of the facts stream."""
        return f"{self.namespace}.ingest.>"

    @property
    def signals_stream(self) -> str:
        """Stream holding every signal the rules raise."""
        return f"{self.namespace.upper()}_SIGNALS"

    @property
    def signals_filter(self) -> str:
        """Subject filter of the signals stream."""
        return f"{self.namespace}.rules.>"

    def fact_subject(self, event_type: str, schema_version: int = 1) -> str:
        """Subject a fact of this type is published on."""
        return f"{self.namespace}.ingest.{event_type}.v{schema_version}"

    def partitioned_fact_subject(
        self, event_type: str, partition: int, partitions: int, schema_version: int = 1
    ) -> str:
        """Subject of a fact in one partition: `<ns>.ingest.<type>.v<major>.p<k>`.

        One partition keeps the unsuffixed subject, so a single-partition deployment (and
        its existing consumers) sees exactly what it saw before partitions existed.
        """
        _check_partition(partition, partitions)
        subject = self.fact_subject(event_type, schema_version)
        return subject if partitions == 1 else f"{subject}.p{partition}"

    def partition_filter(self, partition: int, partitions: int) -> str:
        """Filter subject of one partition's facts (a single token: nats-server 2.9 can use it)."""
        _check_partition(partition, partitions)
        return self.facts_filter if partitions == 1 else f"{self.facts_filter[:-1]}*.*.p{partition}"

    def signal_subject(self, event_type: str, schema_version: int = 1) -> str:
        """Subject a signal fact is published on."""
        return f"{self.namespace}.rules.{event_type}.v{schema_version}"

    @property
    def reports_stream(self) -> str:
        """Stream holding every report the report service issues (`report_issued`)."""
        return f"{self.namespace.upper()}_REPORTS"

    @property
    def reports_filter(self) -> str:
        """Subject filter of the reports stream."""
        return f"{self.namespace}.report.>"

    def report_subject(self, event_type: str = "report_issued", schema_version: int = 1) -> str:
        """Subject a report fact is published on."""
        return f"{self.namespace}.report.{event_type}.v{schema_version}"

    @property
    def notify_stream(self) -> str:
        """Stream holding notify's facts (intended, sent, failed, acknowledged, escalated)."""
        return f"{self.namespace.upper()}_NOTIFY"

    @property
    def notify_filter(self) -> str:
        """Subject filter of the notify stream: its facts only (`<ns>.notify.<type>.v<n>`).

        Not `<ns>.notify.>`: that also matches notify's request subjects (`.ack`, `.log`,
        ...), which a stream would store and answer with a PubAck before notify could.
        """
        return self.notify_subject("*")

    def notify_subject(self, event_type: str, schema_version: int = 1) -> str:
        """Subject a notify fact is published on."""
        return f"{self.namespace}.notify.{event_type}.v{schema_version}"
