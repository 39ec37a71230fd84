"""The DuckDB rules store keeps a snapshot plus a journal; a reopened file folds to the same state.

Writing the whole state on every commit cost each commit the participant's whole history.
The store now writes a snapshot only every so often and journals the inputs folded since:
a reopened store (a restart) must fold them again into exactly the state the live fold had,
ticks and configuration changes included, and each commit must write a bounded amount.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from schemas import ClinicalFact, ClockTicked
from services.rules import app
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG, load_trial_source
from services.rules.core.state_codec import encode_state
from services.rules.ports import Commit, LaneTick
from tests.unit.rules.factories import enrolled, lab, unique
from tests.unit.rules.test_sae_clock import DUE, sae, tick

CONSUMER = "rules-evaluator"
V1_CONFIG, V1 = load_trial_source(DEFAULT_TRIAL_CONFIG)
V2_CONFIG, V2 = load_trial_source(DEFAULT_TRIAL_CONFIG.with_name("NCT01724398.v2.toml"))


def _store(path: Path) -> DuckDBRulesStore:
    return DuckDBRulesStore(path, signal_subject="t.rules.signal_raised.v1")


def _at(items: list[ClinicalFact | ClockTicked], first: int) -> list[ClinicalFact | ClockTicked]:
    return [item.model_copy(update={"seq": first + n}) for n, item in enumerate(items)]


def _rows(path: Path, sql: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        ((count,),) = con.execute(sql).fetchall()
    return int(count)


async def test_a_reopened_store_folds_its_journal_into_the_live_state(tmp_path: Path) -> None:
    path = tmp_path / "rules.duckdb"
    pid = unique("P")
    store = _store(path)
    await store.open()
    history: list[ClinicalFact | ClockTicked] = [enrolled(pid), sae(pid)]
    history += [lab(pid, at=DUE - timedelta(hours=30 - n / 10)) for n in range(150)]
    history += [tick(DUE - timedelta(hours=3)), tick(DUE)]
    items = _at(history, 1)
    for start in range(0, len(items), 20):  # commits of 20: the journal grows between snapshots
        await app.handle_batch(
            items[start : start + 20], consumer=CONSUMER, store=store, config=V1_CONFIG,
            identity=V1,
        )  # fmt: skip
    (live,) = (await store.load([(items[0].trial_id, pid)])).values()
    await store.close()

    journaled = _rows(path, "SELECT count(*) FROM participant_journal")
    reopened = _store(path)
    await reopened.open()
    (again,) = (await reopened.load([(items[0].trial_id, pid)])).values()
    await reopened.close()

    assert journaled > 0, "every commit wrote the whole state"
    assert encode_state(again) == encode_state(live)


async def test_a_commit_writes_what_is_new_not_the_whole_history(tmp_path: Path) -> None:
    """Snapshots are rewritten ever more rarely as the history grows (amortised O(1))."""
    store = _store(tmp_path / "rules.duckdb")
    await store.open()
    pid = unique("P")
    labs = (lab(pid, at=DUE - timedelta(days=3) + timedelta(minutes=n)) for n in range(600))
    facts = _at([enrolled(pid), *labs], 1)
    written: list[int] = []
    plan = store._plan_writes

    def counting(batch: Commit) -> Any:
        planned = plan(batch)
        written.append(len(planned[0]))
        return planned

    store._plan_writes = counting  # type: ignore[method-assign]
    for item in facts:
        await app.handle_batch(
            [item], consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1
        )
    await store.close()

    # Without the journal each of the 601 commits writes the whole state.
    assert len(written) == 601
    assert sum(written) < 601 // 20, sum(written)


async def test_journaled_ticks_and_a_configuration_switch_fold_again_the_same(
    tmp_path: Path,
) -> None:
    """A tick replayed into one participant's lane, and facts folded under v1 then v2."""
    path = tmp_path / "rules.duckdb"
    pid = unique("P")
    store = _store(path)
    await store.open()
    first = _at([enrolled(pid), sae(pid), *(lab(pid) for _ in range(80))], 1)
    await app.handle_batch(first, consumer=CONSUMER, store=store, config=V1_CONFIG, identity=V1)
    reminder = tick(DUE - timedelta(hours=3)).model_copy(update={"seq": 100})
    key = (first[0].trial_id, pid)
    await app.handle_batch(
        [LaneTick(reminder, key), *_at([lab(pid)], 101)],
        consumer=CONSUMER, store=store, config=V2_CONFIG, identity=V2,
    )  # fmt: skip
    await app.handle_batch(
        [reminder], consumer=CONSUMER, store=store, config=V2_CONFIG, identity=V2
    )
    await app.handle_batch(
        _at([lab(pid) for _ in range(5)], 102), consumer=CONSUMER, store=store,
        config=V2_CONFIG, identity=V2,
    )  # fmt: skip
    (live,) = (await store.load([key])).values()
    await store.close()

    reopened = _store(path)
    await reopened.open()
    (again,) = (await reopened.load([key])).values()
    clocks = await reopened.open_clocks(key[0])
    await reopened.close()

    assert _rows(path, "SELECT count(*) FROM participant_journal WHERE tick") >= 1
    assert encode_state(again) == encode_state(live)
    assert clocks == (frozenset({key}) if live.sae_clocks else frozenset())
