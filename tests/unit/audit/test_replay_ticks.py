"""Replay of a log with clock ticks: SAE-02 reminders and alerts as the live rules raise them.

The live side is the rules service's own use-case (`handle_batch` over the in-memory store)
fed the very messages ingest publishes for the log entries (`Entry.wire`, decoded by the
rules' `LOG_FACT_ADAPTER`); the replay side reads the exported bundle. Both must give the
same signals, ids and bytes, in the same order.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kit.files import file_sha256
from safetymon.cli import app as cli
from schemas import GENESIS_HASH, LOG_FACT_ADAPTER, canonical_bytes
from services.audit.adapters._fast import event_log_verified
from services.audit.adapters.bundle_reader import read_chain_rows
from services.audit.adapters.log_reader import participant_partition
from services.audit.adapters.replayer import replay_log
from services.audit.adapters.settings_files import config_path, load_config
from services.audit.core.manifest import EVENT_LOG, MANIFEST_FILE
from services.audit.core.replayed import ReplayResult
from services.audit.core.verify import verify_chain
from services.ingest.core.chain import LogHead, chain
from services.ingest.core.ticks import tick_fact
from services.rules import app as rules_app
from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.core.config import TrialConfig
from tests.factories import TRIAL, enrolment, lab, sae, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

# Each test replays a whole bundle and compares it with the live signals byte for byte.
pytestmark = pytest.mark.slow

HOUR = 3600
DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
#: Both SAEs: awareness 2024-03-01T10:00Z, so due 03-02T10:00Z and the reminder at 06:00Z.
REMINDER_AT = datetime(2024, 3, 2, 6, 0, tzinfo=UTC)
DUE = datetime(2024, 3, 2, 10, 0, tzinfo=UTC)


def _pair_split_against_key_order() -> tuple[str, str]:
    """Two participant codes, the lower one in partition 1 and the higher in partition 0.

    A tick's signals come out in participant-key order; with this split a merge that ordered
    them by partition instead would put them the wrong way round.
    """
    while True:
        low, high = sorted((unique("P"), unique("P")))
        if (participant_partition(low, 2), participant_partition(high, 2)) == (1, 0):
            return low, high


def _tick(boundary: datetime) -> tuple[dict[str, Any], datetime]:
    """The wire of the tick ingest appends at `boundary` (its clock read 2 s after it)."""
    _, wire = tick_fact(TRIAL, boundary + timedelta(seconds=2), period_seconds=HOUR)
    return wire, boundary + timedelta(seconds=2)


def _history() -> tuple[list[dict[str, Any]], tuple[str, str, str]]:
    """Three participants, two SAEs (one recorded later), hourly ticks past the deadline."""
    first, second = _pair_split_against_key_order()
    quiet = unique("P")
    submissions = [
        (enrolment(participant_id=first, occurred_at="2024-03-01T08:00:00Z"), DAY1),
        (enrolment(participant_id=second, occurred_at="2024-03-01T08:00:00Z"), DAY1),
        (enrolment(participant_id=quiet, occurred_at="2024-03-01T08:00:00Z"), DAY1),
        (sae(participant_id=first, occurred_at="2024-03-01T10:00:00Z"), DAY1 + timedelta(hours=1)),
        (
            sae(participant_id=second, occurred_at="2024-03-01T10:00:00Z"),
            DAY1 + timedelta(hours=5, minutes=30),
        ),
        (lab(participant_id=quiet, occurred_at="2024-03-01T20:00:00Z"), DAY1 + timedelta(hours=12)),
    ]
    timed = [
        (wire, at)
        for wire, at in zip(accepted_wires(submissions), [a for _, a in submissions], strict=True)
    ]
    ticks = [_tick(DAY1 + timedelta(hours=h)) for h in range(2, 30)]  # 03-01T11:00 .. 03-02T14:00
    ordered = sorted([*timed, *ticks], key=lambda item: item[1])
    return [wire for wire, _ in ordered], (first, second, quiet)


def _live(wires: list[dict[str, Any]], config: TrialConfig, batch: int) -> list[bytes]:
    """What the live rules service raises for the published log entries, in order."""
    store = InMemoryRulesStore()
    messages = [entry.wire() for entry in chain(wires, LogHead(0, GENESIS_HASH))]
    facts = [LOG_FACT_ADAPTER.validate_json(message) for message in messages]

    async def deliver() -> list[bytes]:
        raised = []
        for start in range(0, len(facts), batch):
            raised.extend(
                await rules_app.handle_batch(
                    facts[start : start + batch],
                    consumer="rules-evaluator",
                    store=store,
                    config=config,
                )
            )
        return [canonical_bytes(signal.model_dump(mode="json")) for signal in raised]

    return asyncio.run(deliver())


def _clock(result: ReplayResult) -> list[tuple[str, str]]:
    return [
        (item.signal.participant_id, str(item.signal.payload.values["clock"]))
        for item in result.signals
        if item.signal.payload.rule_id == "SAE-02"
    ]


def test_a_replay_of_a_log_with_ticks_gives_the_live_sae02_signals_byte_for_byte(
    tmp_path: Path,
) -> None:
    wires, (first, second, _) = _history()
    bundle = write_bundle(tmp_path / "bundle", wires)
    config = load_config()

    live = _live(wires, config, batch=4)
    one = replay_log(bundle / EVENT_LOG, as_of=None, config=config, workers=1)
    two = replay_log(bundle / EVENT_LOG, as_of=None, config=config, workers=2)

    assert _clock(one) == [
        (first, "reminder"), (second, "reminder"), (first, "overdue"), (second, "overdue"),
    ]  # fmt: skip
    fired = {
        (str(s.signal.payload.values["clock"]), s.signal.occurred_at)
        for s in one.signals
        if s.signal.payload.rule_id == "SAE-02"
    }
    assert fired == {("reminder", REMINDER_AT), ("overdue", DUE)}  # the ticks that crossed them
    assert [s.canonical for s in one.signals] == live
    assert [s.canonical for s in two.signals] == live
    assert one.participants == two.participants
    assert (one.facts, one.ticks, one.last_seq) == (6, 28, len(wires))
    assert (two.facts, two.ticks) == (6, 28)
    by_participant = {view.participant_id: view.signals for view in one.participants}
    assert by_participant == {
        view.participant_id: sum(
            1 for s in one.signals if s.signal.participant_id == view.participant_id
        )
        for view in one.participants
    }


def test_live_batching_does_not_change_what_the_replay_must_match(tmp_path: Path) -> None:
    """Delivered one by one or all at once, the live signals are the replay's."""
    wires, _ = _history()
    config = load_config()
    bundle = write_bundle(tmp_path / "bundle", wires)

    replayed = replay_log(bundle / EVENT_LOG, as_of=None, config=config, workers=1)

    for batch in (1, len(wires)):
        assert _live(wires, config, batch=batch) == [s.canonical for s in replayed.signals]


def test_as_of_between_the_reminder_and_the_deadline_has_the_reminders_only(
    tmp_path: Path,
) -> None:
    wires, (first, second, _) = _history()
    bundle = write_bundle(tmp_path / "bundle", wires)

    result = CliRunner().invoke(
        cli, ["audit", "replay", str(bundle), "--as-of", "2024-03-02T09:30:00Z", "--json"]
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    clock = [
        (s["participant_id"], s["rule_id"]) for s in document["signals"] if s["rule_id"] == "SAE-02"
    ]
    assert clock == [(first, "SAE-02"), (second, "SAE-02")]
    reminders = [s for s in document["signals"] if s["rule_id"] == "SAE-02"]
    assert {s["occurred_at"] for s in reminders} == {REMINDER_AT.isoformat()}
    # Ticks 03-01T11:00 .. 03-02T09:00 are recorded by then: 23 of them.
    assert (document["facts"], document["ticks"]) == (6, 23)


def _verify(bundle: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["audit", "verify", str(bundle), "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_a_bundle_with_ticks_verifies_on_the_fast_path_as_row_by_row(tmp_path: Path) -> None:
    wires, _ = _history()
    bundle = write_bundle(tmp_path / "bundle", wires)
    log = bundle / EVENT_LOG
    slow = verify_chain("event_log", read_chain_rows(log))

    code, report = _verify(bundle)

    assert code == 0, report
    chains = {chain["name"]: chain for chain in report["chains"]}
    assert chains["event_log"]["count"] == len(wires)
    assert slow.ok
    assert event_log_verified(log, "event_log", None) == slow  # ticks' null columns match


def test_an_edited_tick_is_caught_by_the_chain_at_its_seq(tmp_path: Path) -> None:
    wires, _ = _history()
    bundle = write_bundle(tmp_path / "bundle", wires)
    table = pq.read_table(bundle / EVENT_LOG)
    types = table.column("event_type").to_pylist()
    row = types.index("clock_ticked", 10)  # a tick in the middle of the log
    contents = table.column("content").to_pylist()
    contents[row] = contents[row].replace('"period_seconds":3600', '"period_seconds":60')
    assert contents[row] != table.column("content")[row].as_py()
    index = table.schema.get_field_index("content")
    pq.write_table(table.set_column(index, "content", pa.array(contents)), bundle / EVENT_LOG)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["files"][EVENT_LOG]["sha256"] = file_sha256(bundle / EVENT_LOG)
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))

    code, report = _verify(bundle)

    assert code == 1
    chains = {chain["name"]: chain for chain in report["chains"]}
    problem = chains["event_log"]["problem"]
    assert (problem["kind"], problem["seq"]) == ("edited", row + 1)


def test_backtest_of_an_earlier_reminder_moves_each_reminder_two_ticks_earlier(
    tmp_path: Path,
) -> None:
    """SAE-02 with the reminder 6 h before the deadline, not 4 h: same ids, other ticks."""
    wires, (first, second, _) = _history()
    bundle = write_bundle(tmp_path / "bundle", wires)
    text = config_path().read_text(encoding="utf-8")
    text = text.replace('"NCT01724398.v1"', '"NCT01724398.v2-candidate"')
    text = text.replace("[sae]\n", "[sae]\nreminder_before_hours = 6\n")
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(text, encoding="utf-8")

    result = CliRunner().invoke(
        cli,
        ["audit", "backtest", str(bundle), "--json", "--rule", "SAE-02", "--version", "1",
         "--candidate-config", str(candidate)],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["live_signals"], report["candidate_signals"]) == (4, 4)
    changed = {p["participant_id"]: p["changed"] for p in report["participants"]}
    assert sorted(changed) == sorted([first, second])
    earlier = (REMINDER_AT - timedelta(hours=2)).isoformat()
    assert all([c["occurred_at"] for c in found] == [earlier] for found in changed.values())
    assert all(not (p["gained"] or p["lost"] or p["retimed"]) for p in report["participants"])
