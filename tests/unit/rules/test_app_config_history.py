"""handle_batch records each configuration switch with its first batch (as-of replay)."""

from __future__ import annotations

import hashlib

import pytest
import structlog
from structlog.testing import capture_logs

from schemas import ClinicalFact
from services.rules import app
from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG, load_trial_source
from services.rules.core.errors import TransientError
from services.rules.ports import Commit, ConfigActivation, ConfigIdentity

from .factories import enrolled, unique

CONSUMER = "rules-evaluator"
V1_CONFIG, V1 = load_trial_source(DEFAULT_TRIAL_CONFIG)
V2_CONFIG, V2 = load_trial_source(DEFAULT_TRIAL_CONFIG.with_name("NCT01724398.v2.toml"))


def at(*seqs: int) -> list[ClinicalFact]:
    """Enrolments at these log positions (as delivered from the log)."""
    return [enrolled(unique("P")).model_copy(update={"seq": seq}) for seq in seqs]


async def history(store: InMemoryRulesStore) -> list[tuple[int, str]]:
    """(from_seq, version) of each recorded activation."""
    return [
        (r.activation.from_seq, r.activation.config.version) for r in await store.config_history()
    ]


async def test_the_first_batch_records_its_configuration_from_its_smallest_seq() -> None:
    """The configuration applies from the first log position it evaluated."""
    store = InMemoryRulesStore()

    await app.handle_batch(
        at(7, 5, 6), consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1
    )

    assert await store.active_config() == ConfigActivation(from_seq=5, config=V1)


async def test_a_restart_with_the_same_configuration_records_nothing() -> None:
    """Later batches, and restarts, under the recorded configuration add no row."""
    store = InMemoryRulesStore()
    await app.handle_batch(at(1, 2), consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1)

    await app.handle_batch(at(3, 4), consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1)
    await app.handle_batch(at(5), consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1)

    assert await history(store) == [(1, "NCT01724398.v1")]


async def test_another_configuration_is_recorded_from_its_first_fresh_fact() -> None:
    """A restart with v2 records v2 from the smallest seq it evaluates, not a redelivered one."""
    store = InMemoryRulesStore()
    first = at(1, 2, 3)
    await app.handle_batch(first, consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1)

    redelivered = [first[2], *at(4, 5)]  # seq 3 was committed under v1: it is skipped
    await app.handle_batch(
        redelivered, consumer=CONSUMER, store=store, config=V2_CONFIG, identity=V2
    )
    await app.handle_batch(at(6), consumer=CONSUMER, store=store, config=V2_CONFIG, identity=V2)
    await app.handle_batch(at(7), consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1)

    assert await history(store) == [
        (1, "NCT01724398.v1"),
        (4, "NCT01724398.v2"),
        (7, "NCT01724398.v1"),
    ]
    recorded = (await store.config_history())[1].activation.config
    assert recorded.rule_versions == (("VB-04", 2),)
    assert recorded.sha256 == hashlib.sha256(recorded.toml.encode()).hexdigest()


async def test_an_edited_file_with_the_same_version_is_another_configuration() -> None:
    """Identity is the file's bytes: an edit under an unchanged version is still recorded."""
    store = InMemoryRulesStore()
    edited = ConfigIdentity(V1.version, "0" * 64, V1.toml + "# edited\n", V1.rule_versions)
    await app.handle_batch(at(1), consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1)

    await app.handle_batch(at(2), consumer=CONSUMER, store=store, config=V1_CONFIG, identity=edited)

    assert await history(store) == [(1, "NCT01724398.v1"), (2, "NCT01724398.v1")]


async def test_facts_without_a_log_position_record_nothing_until_one_has() -> None:
    """A switch needs a position: facts built by hand carry none, the next delivered batch does."""
    store = InMemoryRulesStore()

    await app.handle_batch(
        [enrolled(unique("P"))], consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1
    )
    unrecorded = await store.config_history()
    await app.handle_batch(at(9), consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1)

    assert unrecorded == []
    assert await history(store) == [(9, "NCT01724398.v1")]


async def test_without_an_identity_nothing_is_recorded() -> None:
    """Callers that name no configuration file (tests, replays) leave the history alone."""
    store = InMemoryRulesStore()

    await app.handle_batch(at(1), consumer=CONSUMER, store=store, config=V1_CONFIG)

    assert await store.config_history() == []


class _FailsOnce(InMemoryRulesStore):
    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def commit(self, batch: Commit) -> None:
        if not self.failed:
            self.failed = True
            raise TransientError("injected: storage unavailable")
        await super().commit(batch)


async def test_a_failed_commit_records_no_switch_and_its_redelivery_does() -> None:
    """The switch is recorded if and only if the batch evaluated under it is committed."""
    store = _FailsOnce()
    facts = at(11, 12)

    with pytest.raises(TransientError):
        await app.handle_batch(facts, consumer=CONSUMER, store=store, config=V2_CONFIG, identity=V2)
    lost = await store.config_history()
    await app.handle_batch(facts, consumer=CONSUMER, store=store, config=V2_CONFIG, identity=V2)

    assert lost == []
    assert await history(store) == [(11, "NCT01724398.v2")]


async def test_the_switch_is_logged_and_a_late_redelivery_is_warned_about() -> None:
    """Operators see the switch; a fact before it evaluated under it is flagged, not hidden."""
    store = InMemoryRulesStore()
    log = structlog.get_logger("test")

    with capture_logs() as logs:
        for seq in (20, 15):
            await app.handle_batch(
                at(seq), consumer=CONSUMER, store=store, config=V2_CONFIG, identity=V2, log=log
            )

    events = {entry["event"]: entry for entry in logs}
    activated, late = events["config_activated"], events["fact_before_config_activation"]
    assert (activated["from_seq"], activated["config_version"]) == (20, "NCT01724398.v2")
    assert activated["config_sha256"] == V2.sha256
    assert (late["seq"], late["from_seq"]) == (15, 20)
    assert await history(store) == [(20, "NCT01724398.v2")]
