"""Replay with the configurations that were live: each fact under the one live at its seq."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from safetymon.cli import app
from schemas import canonical_bytes
from services.audit.adapters.log_reader import iter_facts
from services.audit.adapters.parquet_configs import read_timeline
from services.audit.adapters.replayer import replay_log
from services.audit.adapters.settings_files import config_path, load_config
from services.audit.core.errors import BundleError
from services.audit.core.manifest import CONFIG_HISTORY
from services.audit.core.replayed import ReplayResult
from services.audit.core.timeline import Activation, Timeline
from services.rules.core import engine
from services.rules.core.config import TrialConfig
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires, write_log
from tools.demo.generator import HISTORIC_START, iter_feed

BASE = datetime(2024, 1, 1, tzinfo=UTC)
V1 = config_path().read_text(encoding="utf-8")
V2 = (config_path().parent / "NCT01724398.v2.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def configs() -> tuple[TrialConfig, TrialConfig]:
    first, second = load_config(), load_config(config_path().parent / "NCT01724398.v2.toml")
    assert (first.version, second.version) == ("NCT01724398.v1", "NCT01724398.v2")
    return first, second


def _log(directory: Path) -> Path:
    feed = list(iter_feed(participants=6, weeks=3, start=HISTORIC_START))
    items = [(item, BASE + timedelta(minutes=i)) for i, item in enumerate(feed)]
    return write_log(directory, accepted_wires(items))


def _versions(result: ReplayResult) -> list[tuple[int, str]]:
    return [(s.seq, str(s.signal.payload.values["config_version"])) for s in result.signals]


@pytest.mark.slow
def test_each_fact_is_folded_with_the_configuration_live_at_its_position(
    tmp_path: Path, configs: tuple[TrialConfig, TrialConfig]
) -> None:
    v1, v2 = configs
    log = _log(tmp_path)
    switch = 400
    timeline = Timeline((Activation(1, v1), Activation(switch, v2)), recorded=True)

    result = replay_log(log, as_of=None, config=timeline, workers=1)
    two = replay_log(log, as_of=None, config=timeline, workers=2)
    # What the live service does: v1 until its restart, then v2 on the same states.
    states: dict[tuple[str, str], engine.ParticipantState] = {}
    expected = []
    for logged in iter_facts(log):
        config = v1 if logged.seq < switch else v2
        key = (logged.fact.trial_id, logged.fact.participant_id or "")
        outcome = engine.evaluate_guarded(states.get(key), logged.fact, config)  # type: ignore[arg-type]
        if outcome.state is not None:
            states[key] = outcome.state
        expected.extend(canonical_bytes(s.model_dump(mode="json")) for s in outcome.signals)

    assert [s.canonical for s in result.signals] == expected
    assert [s.canonical for s in two.signals] == expected
    stamped = _versions(result)
    assert {v for seq, v in stamped if seq < switch} == {"NCT01724398.v1"}
    assert {v for seq, v in stamped if seq >= switch} == {"NCT01724398.v2"}
    assert result.configs == ((1, "NCT01724398.v1"), (switch, "NCT01724398.v2"))
    assert result.config_version == "NCT01724398.v2"
    before = replay_log(log, as_of=BASE + timedelta(minutes=switch - 10), config=timeline)
    assert before.configs == ((1, "NCT01724398.v1"),)
    assert before.config_version == "NCT01724398.v1"


@pytest.mark.slow
def test_checkpoints_are_shared_only_where_the_configurations_agree(
    tmp_path: Path, configs: tuple[TrialConfig, TrialConfig]
) -> None:
    v1, v2 = configs
    log = _log(tmp_path)
    store = tmp_path / "checkpoints"
    timeline = Timeline((Activation(1, v1), Activation(450, v2)), recorded=True)
    replay_log(log, as_of=None, config=v1, workers=1, checkpoints=store, every=100)

    warm = replay_log(log, as_of=None, config=timeline, workers=1, checkpoints=store, every=100)

    assert [r.from_seq for r in warm.resumptions] == [400]  # v1 alone ran up to 449
    cold = replay_log(log, as_of=None, config=timeline, workers=1)
    assert [s.canonical for s in warm.signals] == [s.canonical for s in cold.signals]


def _history(bundle: Path, rows: list[tuple[int, str, str]]) -> None:
    table = pa.table({
        "from_seq": pa.array([r[0] for r in rows], pa.int64()),
        "config_version": [r[1] for r in rows],
        "config_sha256": [hashlib.sha256(r[2].encode()).hexdigest() for r in rows],
        "config_toml": [r[2] for r in rows],
    })  # fmt: skip
    pq.write_table(table, bundle / CONFIG_HISTORY)


def test_the_history_is_read_in_order_and_checked(tmp_path: Path) -> None:
    _history(tmp_path, [(500, "NCT01724398.v2", V2), (1, "NCT01724398.v1", V1)])

    timeline = read_timeline(tmp_path)

    assert timeline is not None and timeline.recorded
    assert [(a.from_seq, a.config.version) for a in timeline.activations] == [
        (1, "NCT01724398.v1"), (500, "NCT01724398.v2"),
    ]  # fmt: skip
    assert timeline.at(499).version == "NCT01724398.v1"
    assert timeline.at(500).version == "NCT01724398.v2"
    assert read_timeline(tmp_path / "nothing") is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, "NCT01724398.v2", V1)], "the text is NCT01724398.v1, the row says NCT01724398.v2"),
        ([(1, "NCT01724398.v1", "[trial]\nid = 3\n")], "not a valid trial configuration"),
    ],
)
def test_a_history_that_does_not_hold_together_is_refused(
    tmp_path: Path, rows: list[tuple[int, str, str]], message: str
) -> None:
    _history(tmp_path, rows)
    with pytest.raises(BundleError, match=message):
        read_timeline(tmp_path)


def test_a_configuration_text_changed_after_export_is_refused(tmp_path: Path) -> None:
    _history(tmp_path, [(1, "NCT01724398.v1", V1)])
    table = pq.read_table(tmp_path / CONFIG_HISTORY)
    edited = V1.replace("worsening_window_hours = 72", "worsening_window_hours = 96")
    assert edited != V1
    table = table.set_column(3, "config_toml", pa.array([edited]))
    pq.write_table(table, tmp_path / CONFIG_HISTORY)

    with pytest.raises(BundleError, match="does not match its sha256"):
        read_timeline(tmp_path)


@pytest.mark.slow
def test_a_bundle_whose_configuration_switched_replays_like_the_live_service(
    tmp_path: Path,
) -> None:
    feed = list(iter_feed(participants=6, weeks=3, start=HISTORIC_START))
    items = [(item, BASE + timedelta(minutes=i)) for i, item in enumerate(feed)]
    switch = 300
    bundle = write_bundle(
        tmp_path / "bundle", accepted_wires(items), configs=[(1, V1), (switch, V2)]
    )

    result = CliRunner().invoke(app, ["audit", "replay", str(bundle), "--json"])
    alone = CliRunner().invoke(
        app, ["audit", "replay", str(bundle), "--json", "--config", str(config_path())]
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["configurations"] == [
        {"from_seq": 1, "config_version": "NCT01724398.v1"},
        {"from_seq": switch, "config_version": "NCT01724398.v2"},
    ]
    assert document["live_signals"]["ok"] is True  # the live run switched there too
    assert document["live_signals"]["identical"] == len(document["signals"]) > 0
    assert {s["config_version"] for s in document["signals"] if s["seq"] >= switch} == {
        "NCT01724398.v2"
    }
    # v1 for the whole log is not what the live service did: the comparison says so.
    assert alone.exit_code == 1, alone.output
    assert json.loads(alone.stdout)["live_signals"]["ok"] is False
