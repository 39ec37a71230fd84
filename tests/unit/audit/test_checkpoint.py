"""Replay checkpoints: a replay that starts from one gives the bytes of a fold from the start.

Each test compares against a replay without checkpoints, so a checkpoint that kept too
little (a state field, an open clock, a view, a signal's position) shows as a difference.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kit.files import file_sha256
from safetymon.cli import app
from services.audit.adapters import checkpoint_store as checkpoint
from services.audit.adapters.bundle_reader import read_manifest
from services.audit.adapters.replayer import replay_log
from services.audit.adapters.settings_files import load_config
from services.audit.core.manifest import EVENT_LOG
from services.audit.core.replayed import ReplayResult
from services.audit.core.timeline import Activation
from services.rules.core.config import TrialConfig
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires, write_log
from tests.unit.audit.test_replay_ticks import _history
from tools.demo.generator import HISTORIC_START, iter_feed

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _feed_log(directory: Path, *, change_at: int | None = None) -> tuple[Path, int]:
    feed = list(iter_feed(participants=6, weeks=3, start=HISTORIC_START))
    if change_at is not None:  # another history from this entry on (an edited source)
        feed[change_at] = {**feed[change_at], "source_ref": "edited-elsewhere"}
    items = [(item, BASE + timedelta(minutes=i)) for i, item in enumerate(feed)]
    return write_log(directory, accepted_wires(items)), len(feed)


def _same(a: ReplayResult, b: ReplayResult) -> None:
    assert [s.canonical for s in a.signals] == [s.canonical for s in b.signals]
    assert [s.seq for s in a.signals] == [s.seq for s in b.signals]
    assert a.participants == b.participants
    assert (a.facts, a.ticks, a.last_seq) == (b.facts, b.ticks, b.last_seq)


def _from(result: ReplayResult) -> list[int | None]:
    return [r.from_seq for r in result.resumptions]


@pytest.fixture(scope="module")
def config() -> TrialConfig:
    return load_config()


@pytest.mark.slow
def test_a_replay_from_checkpoints_gives_the_bytes_of_a_replay_from_the_first_entry(
    tmp_path: Path, config: TrialConfig
) -> None:
    log, rows = _feed_log(tmp_path / "log")
    cold = replay_log(log, as_of=None, config=config, workers=1)
    store = tmp_path / "checkpoints"

    first = replay_log(log, as_of=None, config=config, workers=1, checkpoints=store, every=100)
    again = replay_log(log, as_of=None, config=config, workers=1, checkpoints=store, every=100)

    assert len(cold.signals) >= 5
    _same(first, cold)
    _same(again, cold)
    assert _from(first) == [None]
    assert first.resumptions[0].saved == rows // 100 + (rows % 100 > 0)  # the end as well
    assert _from(again) == [rows]  # the whole log was there: nothing left to fold


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_as_of_replays_start_from_the_newest_checkpoint_before_their_cut(
    tmp_path: Path, config: TrialConfig, workers: int
) -> None:
    log, rows = _feed_log(tmp_path / "log")
    store = tmp_path / "checkpoints"
    replay_log(log, as_of=None, config=config, workers=workers, checkpoints=store, every=100)

    for minutes in (50, 250, rows // 2 + 7, rows - 3):
        as_of = BASE + timedelta(minutes=minutes)  # entry n (from 1) was recorded at n - 1
        cold = replay_log(log, as_of=as_of, config=config, workers=workers)
        warm = replay_log(
            log, as_of=as_of, config=config, workers=workers, checkpoints=store, every=100
        )
        _same(warm, cold)
        newest = (minutes + 1) // 100 * 100
        assert _from(warm) == [newest or None] * workers


@pytest.mark.slow
def test_a_checkpoint_of_another_history_is_not_used(tmp_path: Path, config: TrialConfig) -> None:
    log, _ = _feed_log(tmp_path / "a")
    store = tmp_path / "checkpoints"
    replay_log(log, as_of=None, config=config, workers=1, checkpoints=store, every=100)
    # Same positions, same code; entry 150 differs, so every chain hash from 150 on differs.
    other, _ = _feed_log(tmp_path / "b", change_at=149)

    warm = replay_log(other, as_of=None, config=config, workers=1, checkpoints=store, every=100)

    _same(warm, replay_log(other, as_of=None, config=config, workers=1))
    assert _from(warm) == [100]  # the last position both histories share


@pytest.mark.slow
def test_a_damaged_checkpoint_is_passed_over_for_an_older_one(
    tmp_path: Path, config: TrialConfig
) -> None:
    log, rows = _feed_log(tmp_path / "log")
    store = tmp_path / "checkpoints"
    replay_log(log, as_of=None, config=config, workers=1, checkpoints=store, every=100)
    files = sorted(store.rglob("*.ckpt"))
    newest = files[-1]
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0x01  # one bit of the body
    newest.write_bytes(bytes(data))

    warm = replay_log(log, as_of=None, config=config, workers=1, checkpoints=store, every=100)

    _same(warm, replay_log(log, as_of=None, config=config, workers=1))
    assert _from(warm) == [rows // 100 * 100]


@pytest.mark.slow
def test_a_checkpoint_of_another_configuration_is_not_used(
    tmp_path: Path, config: TrialConfig
) -> None:
    log, _ = _feed_log(tmp_path / "log")
    store = tmp_path / "checkpoints"
    replay_log(log, as_of=None, config=config, workers=1, checkpoints=store, every=100)
    other = replace(config, version=f"{config.version}-other")

    warm = replay_log(log, as_of=None, config=other, workers=1, checkpoints=store, every=100)

    assert _from(warm) == [None]
    assert checkpoint.configs_fingerprint([Activation(0, other)]) != checkpoint.configs_fingerprint(
        [Activation(0, config)]
    )


@pytest.mark.slow
def test_a_replay_resumed_at_any_position_keeps_the_open_sae_clocks(
    tmp_path: Path, config: TrialConfig
) -> None:
    wires, _ = _history()
    log = write_bundle(tmp_path / "bundle", wires) / EVENT_LOG
    cold = replay_log(log, as_of=None, config=config, workers=1)
    store = tmp_path / "checkpoints"
    replay_log(log, as_of=None, config=config, workers=1, checkpoints=store, every=1)
    files = {int(p.name.split("-")[0]): p.read_bytes() for p in store.rglob("*.ckpt")}
    folder = next(store.rglob("*.ckpt")).parent

    assert sorted(files) == list(range(1, len(wires) + 1))  # one at every position
    for seq, body in sorted(files.items()):
        for old in folder.glob("*.ckpt"):
            old.unlink()
        (folder / f"{seq:012d}-x.ckpt").write_bytes(body)  # only this one is left

        warm = replay_log(log, as_of=None, config=config, workers=1, checkpoints=store, every=0)

        assert _from(warm) == [seq]
        _same(warm, cold)
    assert [s.signal.payload.values["clock"] for s in cold.signals if s.signal.payload.rule_id
            == "SAE-02"] == ["reminder", "reminder", "overdue", "overdue"]  # fmt: skip


@pytest.mark.slow
def test_the_fingerprint_is_the_same_in_every_process() -> None:
    # A set's order follows the per-process hash seed; a fingerprint that did would never
    # match the checkpoints of an earlier run.
    script = (
        "from services.audit.adapters import checkpoint_store as checkpoint;"
        " from services.audit.adapters.settings_files import load_config;"
        " from services.audit.core.timeline import Activation;"
        " print(checkpoint.configs_fingerprint([Activation(0, load_config())]))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(prints) == 1
    assert prints == {checkpoint.configs_fingerprint([Activation(0, load_config())])}


@pytest.mark.slow
def test_the_cli_replays_from_its_checkpoints_and_says_where_it_began(tmp_path: Path) -> None:
    feed = list(iter_feed(participants=4, weeks=2, start=HISTORIC_START))
    items = [(item, BASE + timedelta(minutes=i)) for i, item in enumerate(feed)]
    bundle = write_bundle(tmp_path / "bundle", accepted_wires(items))
    digests = {p.name: file_sha256(p) for p in bundle.iterdir()}
    store = tmp_path / "checkpoints"

    def run(*extra: str) -> dict[str, Any]:
        result = CliRunner().invoke(app, ["audit", "replay", str(bundle), "--json", *extra])
        assert result.exit_code == 0, result.output
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    plain = run()
    first = run("--checkpoints", str(store))
    second = run("--checkpoints", str(store))
    table = CliRunner().invoke(app, ["audit", "replay", str(bundle), "--checkpoints", str(store)])

    assert plain["checkpoints"] == [
        {"partition": [0, 1], "resumed_from_seq": None, "chain_hash": None, "written": 0}
    ]
    assert first["checkpoints"][0]["written"] == 1  # the end of the log (fewer than 100,000)
    assert second["checkpoints"][0]["resumed_from_seq"] == len(feed)
    chain = read_manifest(bundle).files[EVENT_LOG].chain
    assert chain is not None
    assert second["checkpoints"][0]["chain_hash"] == chain.head
    for document in (first, second):
        assert document["signals"] == plain["signals"]
        assert document["participants"] == plain["participants"]
        assert document["live_signals"] == plain["live_signals"]
    assert f"Folded from a verified checkpoint at seq {len(feed)}" in table.output
    assert {p.name: file_sha256(p) for p in bundle.iterdir()} == digests  # bundle untouched


@pytest.mark.slow
def test_a_replay_in_this_process_leaves_the_cycle_collector_as_it_found_it(
    tmp_path: Path, config: TrialConfig
) -> None:
    log, _ = _feed_log(tmp_path)
    assert gc.isenabled()
    replay_log(log, as_of=None, config=config, workers=1)
    assert gc.isenabled()
    gc.disable()
    try:
        replay_log(log, as_of=None, config=config, workers=1)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.slow
def test_a_later_export_of_the_same_log_starts_where_the_earlier_one_ended(
    tmp_path: Path, config: TrialConfig
) -> None:
    # An auditor's weekly export holds last week's log plus what came since: the chain hash
    # at the old end is the same, so the new replay folds only the new entries.
    feed = list(iter_feed(participants=6, weeks=3, start=HISTORIC_START))
    items = [(item, BASE + timedelta(minutes=i)) for i, item in enumerate(feed)]
    wires = accepted_wires(items)
    earlier = write_log(tmp_path / "earlier", wires[:600])
    later = write_log(tmp_path / "later", wires)
    store = tmp_path / "checkpoints"
    replay_log(earlier, as_of=None, config=config, workers=1, checkpoints=store, every=1_000)

    warm = replay_log(later, as_of=None, config=config, workers=1, checkpoints=store, every=1_000)

    assert _from(warm) == [600]
    _same(warm, replay_log(later, as_of=None, config=config, workers=1))


def test_the_code_fingerprint_hashes_every_file_the_fold_runs() -> None:
    # A checkpoint of other code must never be read: the fingerprint has to change whenever
    # the code a fold's result depends on does. A file listed at a place it has left would
    # silently drop out of the hash, so every entry must match, and the modules the replay
    # folds with (wherever they live) must be among the files hashed.
    from importlib import import_module, resources

    hashed = {path.resolve() for _, path in checkpoint.hashed_files()}
    for package, pattern in checkpoint.CODE:
        root = Path(str(resources.files(package)))
        assert list(root.glob(pattern)), f"{package}/{pattern} matches no file"
    folded_with = [
        "services.audit.core.fold",
        "services.audit.core.steps",
        "services.audit.core.checkpoint_codec",
        "services.audit.adapters.log_reader",
        "services.audit.adapters.checkpoint_store",
        "services.rules.published.model",
        "services.rules.core.fold",
        "services.rules.core.engine",
        "schemas",
    ]
    for name in folded_with:
        source = import_module(name).__file__
        assert source is not None
        assert Path(source).resolve() in hashed, f"{name} is not in the code fingerprint"
