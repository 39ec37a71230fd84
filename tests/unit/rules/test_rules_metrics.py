"""Rules' metrics: a committed batch is counted (signals by rule, folded inputs, letters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.adapters.metrics import MeteredStore, RulesMetrics
from services.rules.ports import Commit, Folded
from tests.unit.notify.factories import make_signal


async def test_a_commit_counts_its_signals_and_folded_inputs_once_committed() -> None:
    """Operations: signals per rule and urgency, folded facts and ticks, commit time."""
    registry = CollectorRegistry()
    store = InMemoryRulesStore()
    signal = make_signal(rule_id="SAE-01")
    folded = (
        Folded(("T", "P"), 1, tick=False, body=b"{}"),
        Folded(("T", "P"), 2, tick=True, body=b"{}"),
    )

    await MeteredStore(store, RulesMetrics(registry)).commit(
        Commit(consumer="c", tracking=(signal.event_id,), folded=folded, signals=(signal,))
    )

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("safetymon_rules_signals_total", rule="SAE-01", urgency="U0", kind="raised") == 1
    assert value("safetymon_rules_facts_folded_total", kind="fact") == 1
    assert value("safetymon_rules_facts_folded_total", kind="tick") == 1
    assert value("safetymon_rules_commit_seconds_count") == 1
