"""Port contract of the rules store: one suite, run against the in-memory and DuckDB adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from schemas import ClinicalFact, SeriousnessCriterion
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.core.engine import Signal
from services.rules.core.errors import AlreadyProcessedError, TransientError
from services.rules.core.fold import replay
from services.rules.core.state import ParticipantState
from services.rules.ports import (
    Commit,
    ConfigActivation,
    ConfigIdentity,
    DeadLetter,
    RulesStore,
)
from tests.unit.rules.factories import ae_payload, ae_reported, corrected, died, enrolled, unique

CONSUMER = "rules-evaluator"
SUBJECT = "t.rules.signal_raised.v1"
UPDATED = "t.rules.signal_updated.v1"


def history() -> tuple[ParticipantState, tuple[Signal, ...], list[ClinicalFact]]:
    """A participant with an SAE and a death: one state, two signals."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, criteria=(SeriousnessCriterion.HOSPITALISATION,)),
        died(pid),
    ]
    states, signals = replay(facts)
    return next(iter(states.values())), signals, facts


def commit_of(
    facts: list[ClinicalFact], state: ParticipantState, signals: tuple[Signal, ...]
) -> Commit:
    return Commit(
        consumer=CONSUMER,
        tracking=tuple(f.event_id for f in facts),
        states=(state,),
        signals=signals,
    )


def identity(version: str) -> ConfigIdentity:
    text = f'[trial]\nid = "T"\nconfig_version = "{version}"\n'
    return ConfigIdentity(version, sha256=version * 8, toml=text, rule_versions=(("VB-04", 2),))


class RulesStoreContract:
    """Behaviour every RulesStore must have; subclasses provide `store` and `reopen`."""

    async def reopen(self, store: RulesStore) -> RulesStore:
        raise NotImplementedError

    async def test_retractions_are_queued_on_the_signal_updated_subject(
        self, store: RulesStore
    ) -> None:
        pid = unique("P")
        report = ae_reported(pid, criteria=(SeriousnessCriterion.HOSPITALISATION,))
        facts = [enrolled(pid), report, corrected(pid, report.event_id, ae_payload())]
        states, signals = replay(facts)

        await store.commit(commit_of(facts, next(iter(states.values())), signals))

        rows = await store.unpublished(limit=10)
        assert [(r.signal_id, r.subject) for r in rows] == [
            (signals[0].event_id, SUBJECT),
            (signals[1].event_id, UPDATED),
        ]
        assert signals[1].event_type == "signal_updated"

    async def test_open_clocks_lists_only_states_with_an_open_sae02_clock(
        self, store: RulesStore
    ) -> None:
        state, signals, facts = history()  # a serious AE: its SAE-02 clock is open
        quiet_pid = unique("P")
        quiet_states, _ = replay([enrolled(quiet_pid)])
        quiet = next(iter(quiet_states.values()))

        await store.commit(commit_of(facts, state, signals))
        await store.commit(Commit(CONSUMER, (uuid4(),), states=(quiet,)))

        assert state.sae_clocks
        assert await store.open_clocks(state.trial_id) == frozenset({state.key})
        assert await store.open_clocks("ANOTHER-TRIAL") == frozenset()

    async def test_commit_records_tracking_state_and_outbox(self, store: RulesStore) -> None:
        state, signals, facts = history()

        await store.commit(commit_of(facts, state, signals))

        ids = [f.event_id for f in facts]
        assert await store.processed(CONSUMER, [*ids, uuid4()]) == frozenset(ids)
        assert await store.processed("another-consumer", ids) == frozenset()
        assert await store.load([state.key, ("T", "unknown")]) == {state.key: state}
        rows = await store.unpublished(limit=10)
        assert [r.signal_id for r in rows] == [s.event_id for s in signals]
        assert [r.body for r in rows] == [s.model_dump_json().encode() for s in signals]
        assert {r.subject for r in rows} == {SUBJECT}

    async def test_commit_twice_with_same_tracking_is_detected(self, store: RulesStore) -> None:
        state, signals, facts = history()
        await store.commit(commit_of(facts, state, signals))
        other_state, other_signals, _ = history()

        with pytest.raises(AlreadyProcessedError):
            await store.commit(commit_of(facts[:1], other_state, other_signals))

        assert await store.load([other_state.key]) == {}
        assert len(await store.unpublished(limit=10)) == len(signals)

    async def test_state_upsert_replaces_previous_state(self, store: RulesStore) -> None:
        state, signals, facts = history()
        await store.commit(commit_of(facts, state, signals))
        newer = state.with_raised("X-01")

        await store.commit(Commit(consumer=CONSUMER, tracking=(uuid4(),), states=(newer,)))

        assert await store.load([state.key]) == {state.key: newer}

    async def test_outbox_rows_listed_until_marked(self, store: RulesStore) -> None:
        state, signals, facts = history()
        await store.commit(commit_of(facts, state, signals))
        first, second = signals

        await store.mark_published([first.event_id])
        remaining = await store.unpublished(limit=10)
        await store.mark_published([first.event_id, second.event_id])

        assert [r.signal_id for r in remaining] == [second.event_id]
        assert await store.unpublished(limit=10) == []

    async def test_outbox_keeps_commit_order_and_limit(self, store: RulesStore) -> None:
        batches = [history() for _ in range(3)]
        for state, signals, facts in batches:
            await store.commit(commit_of(facts, state, signals))

        rows = await store.unpublished(limit=4)

        expected = [s.event_id for _, signals, _ in batches for s in signals][:4]
        assert [r.signal_id for r in rows] == expected
        assert [r.seq for r in rows] == sorted(r.seq for r in rows)

    async def test_same_signal_twice_is_one_outbox_row(self, store: RulesStore) -> None:
        state, signals, facts = history()
        await store.commit(commit_of(facts, state, signals))

        await store.commit(Commit(consumer=CONSUMER, tracking=(uuid4(),), signals=signals))

        assert len(await store.unpublished(limit=10)) == len(signals)

    async def test_dead_letters_are_kept(self, store: RulesStore) -> None:
        letter = DeadLetter(
            dead_letter_id=uuid4(),
            consumer=CONSUMER,
            stage="decode",
            error="<message>:json_invalid",
            subject="t.ingest.x.v1",
            stream_seq=42,
            body=b"\xffnot json",
        )

        await store.commit(Commit(consumer=CONSUMER, tracking=(uuid4(),), dead_letters=(letter,)))
        await store.commit(Commit(consumer=CONSUMER, tracking=(uuid4(),), dead_letters=(letter,)))

        assert await store.dead_letters() == [letter]

    async def test_everything_survives_reopen(self, store: RulesStore) -> None:
        state, signals, facts = history()
        await store.commit(commit_of(facts, state, signals))
        await store.mark_published([signals[0].event_id])

        reopened = await self.reopen(store)

        assert await reopened.load([state.key]) == {state.key: state}
        assert await reopened.processed(CONSUMER, [facts[0].event_id]) == {facts[0].event_id}
        assert [r.signal_id for r in await reopened.unpublished(limit=10)] == [signals[1].event_id]
        more_state, more_signals, more_facts = history()
        await reopened.commit(commit_of(more_facts, more_state, more_signals))
        rows = await reopened.unpublished(limit=10)
        expected = [signals[1].event_id, *(s.event_id for s in more_signals)]
        assert [r.signal_id for r in rows] == expected
        assert len({r.seq for r in rows}) == len(rows)

    async def test_no_configuration_is_active_before_one_is_recorded(
        self, store: RulesStore
    ) -> None:
        assert await store.active_config() is None
        assert await store.config_history() == []

    async def test_activations_are_recorded_with_their_batch_and_the_newest_is_active(
        self, store: RulesStore
    ) -> None:
        v1 = ConfigActivation(from_seq=1, config=identity("v1"))
        v2 = ConfigActivation(from_seq=40, config=identity("v2"))

        await store.commit(Commit(CONSUMER, (uuid4(),), activation=v1))
        await store.commit(Commit(CONSUMER, (uuid4(),)))
        await store.commit(Commit(CONSUMER, (uuid4(),), activation=v2))

        assert await store.active_config() == v2
        history = await store.config_history()
        assert [record.activation for record in history] == [v1, v2]
        assert all(record.activated_at.tzinfo is not None for record in history)
        assert history[0].activated_at <= history[1].activated_at

    async def test_a_refused_commit_records_no_activation(self, store: RulesStore) -> None:
        state, signals, facts = history()
        await store.commit(commit_of(facts, state, signals))
        v1 = ConfigActivation(from_seq=7, config=identity("v1"))

        with pytest.raises(AlreadyProcessedError):
            await store.commit(Commit(CONSUMER, (facts[0].event_id,), activation=v1))

        assert await store.active_config() is None
        assert await store.config_history() == []

    async def test_a_second_activation_at_one_position_is_refused(self, store: RulesStore) -> None:
        v1 = ConfigActivation(from_seq=5, config=identity("v1"))
        await store.commit(Commit(CONSUMER, (uuid4(),), activation=v1))
        kept = uuid4()

        with pytest.raises(AlreadyProcessedError):
            await store.commit(
                Commit(CONSUMER, (kept,), activation=ConfigActivation(5, identity("v2")))
            )

        assert await store.processed(CONSUMER, [kept]) == frozenset()
        assert await store.active_config() == v1

    async def test_the_config_history_survives_reopen(self, store: RulesStore) -> None:
        v1 = ConfigActivation(from_seq=3, config=identity("v1"))
        await store.commit(Commit(CONSUMER, (uuid4(),), activation=v1))

        reopened = await self.reopen(store)

        assert await reopened.active_config() == v1
        assert [record.activation for record in await reopened.config_history()] == [v1]


class TestInMemoryRulesStore(RulesStoreContract):
    @pytest.fixture
    async def store(self) -> InMemoryRulesStore:
        return InMemoryRulesStore(signal_subject=SUBJECT, updated_subject=UPDATED)

    async def reopen(self, store: RulesStore) -> RulesStore:
        return store  # memory lives as long as the process


class TestDuckDBRulesStore(RulesStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[DuckDBRulesStore]:
        self.opened: list[DuckDBRulesStore] = []
        store = DuckDBRulesStore(
            tmp_path / "rules.duckdb", signal_subject=SUBJECT, updated_subject=UPDATED
        )
        await store.open()
        self.opened.append(store)
        yield store
        for each in self.opened:
            await each.close()

    async def reopen(self, store: RulesStore) -> RulesStore:
        assert isinstance(store, DuckDBRulesStore)
        await store.close()
        again = DuckDBRulesStore(store.path, signal_subject=SUBJECT, updated_subject=UPDATED)
        await again.open()
        self.opened.append(again)
        return again

    async def test_closed_store_raises_transient(self, store: DuckDBRulesStore) -> None:
        await store.close()

        with pytest.raises(TransientError):
            await store.unpublished(limit=1)
