"""The handle_batch use-case against the in-memory store: idempotency, ordering, dead letters."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from schemas import ClinicalFact, SeriousnessCriterion
from services.rules import app
from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.core import engine
from services.rules.core.config import DEFAULT_CONFIG
from services.rules.core.engine import RULES, Rule
from services.rules.core.state import ParticipantState

from .factories import ae_reported, ae_updated, enrolled, unique

S = SeriousnessCriterion
CONSUMER = "rules-evaluator"


async def test_batch_commits_signals_to_the_outbox() -> None:
    """A serious AE in a batch ends up as one outbox row, returned for the relay."""
    store = InMemoryRulesStore()
    pid = unique("P")
    facts = [enrolled(pid), ae_reported(pid, criteria=(S.HOSPITALISATION,))]

    signals = await app.handle_batch(facts, consumer=CONSUMER, store=store)

    assert [s.payload.rule_id for s in signals] == ["SAE-01"]
    rows = await store.unpublished(limit=10)
    assert [row.signal_id for row in rows] == [signals[0].event_id]
    assert rows[0].body == signals[0].model_dump_json().encode()


async def test_redelivered_batch_is_skipped() -> None:
    """Facts already tracked for this consumer are skipped: no second signal (exactly once)."""
    store = InMemoryRulesStore()
    pid = unique("P")
    facts = [enrolled(pid), ae_reported(pid, criteria=(S.HOSPITALISATION,))]
    await app.handle_batch(facts, consumer=CONSUMER, store=store)

    again = await app.handle_batch(facts, consumer=CONSUMER, store=store)

    assert again == []
    assert len(await store.unpublished(limit=10)) == 1


async def test_duplicate_within_a_batch_is_evaluated_once() -> None:
    """The same event twice in one batch is evaluated once (no tracking clash, no double signal)."""
    store = InMemoryRulesStore()
    fact = ae_reported(unique("P"), criteria=(S.HOSPITALISATION,))

    signals = await app.handle_batch([fact, fact], consumer=CONSUMER, store=store)

    assert len(signals) == 1


async def test_state_carries_over_between_batches() -> None:
    """An update in a later batch sees the AE reported in an earlier one (fires once)."""
    store = InMemoryRulesStore()
    pid = unique("P")
    await app.handle_batch([enrolled(pid), ae_reported(pid)], consumer=CONSUMER, store=store)
    update = ae_updated(pid, criteria=(S.HOSPITALISATION,))

    signals = await app.handle_batch([update], consumer=CONSUMER, store=store)
    later = await app.handle_batch(
        [ae_updated(pid, criteria=(S.HOSPITALISATION,))], consumer=CONSUMER, store=store
    )

    assert [s.causation_id for s in signals] == [update.event_id]
    assert signals[0].payload.arm == "B"
    assert later == []


async def test_rule_defect_dead_letters_and_raises_sys01() -> None:
    """A rule that raises: dead letter + SYS-01, other facts and rules of the batch continue."""

    def broken(state: ParticipantState, fact: ClinicalFact) -> engine.Step:
        raise ZeroDivisionError

    rules = engine.RuleSet(DEFAULT_CONFIG, (*RULES, Rule("BROKEN-01", 1, broken)))
    store = InMemoryRulesStore()
    pid = unique("P")
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,))

    with capture_logs() as logs:
        signals = await app.handle_batch(
            [enrolled(pid), fact],
            consumer=CONSUMER,
            store=store,
            log=structlog.get_logger(),
            config=rules,
        )

    assert [s.payload.rule_id for s in signals] == ["SYS-01", "SAE-01", "SYS-01"]
    letters = await store.dead_letters()
    assert [(d.event_id, d.stage, d.error) for d in letters][-1] == (
        fact.event_id,
        "evaluate",
        "BROKEN-01:ZeroDivisionError",
    )
    dead_logs = [entry for entry in logs if entry["event"] == "fact_dead_lettered"]
    assert {entry["log_level"] for entry in dead_logs} == {"error"}


async def test_logs_carry_ids_and_codes_only() -> None:
    """signal_raised logs name ids and codes, never the AE term or other payload text."""
    store = InMemoryRulesStore()
    pid = unique("P")
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,), term="Oesophageal varices haemorrhage")

    with capture_logs() as logs:
        await app.handle_batch([fact], consumer=CONSUMER, store=store, log=structlog.get_logger())

    raised = [entry for entry in logs if entry["event"] == "signal_raised"]
    assert raised[0]["rule_id"] == "SAE-01"
    assert "varices" not in repr(logs)
