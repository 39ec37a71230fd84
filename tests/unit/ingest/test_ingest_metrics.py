"""Ingest's counters: accepted, and rejected by a bounded set of reasons."""

from __future__ import annotations

from uuid import uuid4

from prometheus_client import CollectorRegistry

from services.ingest.adapters.metrics import REASONS, IngestMetrics
from services.ingest.app import Outcome


def test_each_outcome_counts_under_its_reason() -> None:
    """accepted; duplicate; conflict (same key, other content); validation; out of site."""
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)

    metrics.count([
        Outcome(0, "accepted", uuid4()),
        Outcome(1, "accepted", uuid4()),
        Outcome(2, "duplicate", uuid4()),
        Outcome(3, "rejected", conflict=True),
        Outcome(4, "rejected"),
    ])  # fmt: skip
    metrics.out_of_site(3)

    rejected = {
        reason: registry.get_sample_value(
            "safetymon_ingest_facts_rejected_total", {"reason": reason}
        )
        for reason in REASONS
    }
    assert registry.get_sample_value("safetymon_ingest_facts_accepted_total") == 2
    assert rejected == {"duplicate": 1, "conflict": 1, "validation": 1, "out_of_site": 3}
