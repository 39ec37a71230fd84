"""handle_batch with clock ticks: SAE-02 fans out to participants with open clocks, once."""

from __future__ import annotations

from datetime import timedelta

from services.rules import app
from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.core.fold import replay

from .factories import enrolled, unique
from .test_sae_clock import DUE, sae, tick

CONSUMER = "rules-evaluator"


async def test_tick_in_a_later_batch_reaches_committed_clocks_like_replay() -> None:
    """A tick finds the clock a previous batch committed; live equals replay, byte for byte."""
    store = InMemoryRulesStore()
    pid, other = unique("P"), unique("P")
    first = [enrolled(pid), enrolled(other), sae(pid)]
    ticks = [tick(DUE - timedelta(hours=3)), tick(DUE)]

    await app.handle_batch(first, consumer=CONSUMER, store=store)
    live = await app.handle_batch(ticks, consumer=CONSUMER, store=store)
    _, replayed = replay([*first, *ticks])

    assert [s.payload.values["clock"] for s in live] == ["reminder", "overdue"]
    assert [s.model_dump_json() for s in live] == [
        s.model_dump_json() for s in replayed if s.payload.rule_id == "SAE-02"
    ]
    assert await store.open_clocks(first[0].trial_id) == frozenset()


async def test_tick_in_the_same_batch_as_the_sae_sees_its_new_clock() -> None:
    """A clock opened earlier in the same batch is visible to a tick later in it."""
    store = InMemoryRulesStore()
    pid = unique("P")

    signals = await app.handle_batch(
        [enrolled(pid), sae(pid), tick(DUE)], consumer=CONSUMER, store=store
    )

    assert [s.payload.rule_id for s in signals] == ["SAE-01", "SAE-02"]


async def test_redelivered_tick_fires_nothing_twice() -> None:
    """A tick already tracked is skipped: the overdue alert goes out once."""
    store = InMemoryRulesStore()
    pid = unique("P")
    due_tick = tick(DUE)
    await app.handle_batch([enrolled(pid), sae(pid)], consumer=CONSUMER, store=store)

    first = await app.handle_batch([due_tick], consumer=CONSUMER, store=store)
    again = await app.handle_batch([due_tick], consumer=CONSUMER, store=store)

    assert [s.payload.rule_id for s in first] == ["SAE-02"]
    assert again == []
