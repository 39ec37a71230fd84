"""Backtest: a candidate rule over the whole log, diffed per participant against the live rule."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import pytest
from typer.testing import CliRunner

from safetymon.cli import app
from services.audit.adapters.replayer import replay_bundle
from services.audit.adapters.settings_files import config_path, load_config
from services.audit.core.backtest import diff
from services.audit.core.replayed import ReplayedSignal, ReplayResult
from tests.factories import enrolment, lab, submission, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

# Backtests replay a whole bundle written by the live services' own stores.
pytestmark = pytest.mark.slow

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
#: Temperatures per participant, 6 h apart: A only reaches 37.6 °C, B only 38.2 °C, C 37.6
#: then 38.2. Live INF-01 fires at >= 38.0: for B and C. At 37.5: A gained, C earlier. At
#: 38.5: B and C lost.
TEMPERATURES = {"A": (37.6,), "B": (38.2,), "C": (37.6, 38.2)}


def _vitals(pid: str, celsius: float, at: datetime) -> dict[str, Any]:
    payload = {"observations": {"temperature": {"value": celsius, "unit": "Cel"}}}
    return submission("vital_signs_recorded", payload, participant_id=pid,
                      occurred_at=at.isoformat(), source="monitor")  # fmt: skip


@pytest.fixture(scope="module")
def participants() -> dict[str, str]:
    return {name: unique(f"BT{name}") for name in TEMPERATURES}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, participants: dict[str, str]) -> Path:
    items: list[tuple[dict[str, Any], datetime]] = []
    for name, temperatures in TEMPERATURES.items():
        pid = participants[name]
        items.append((enrolment(participant_id=pid, occurred_at=T0.isoformat()), T0))
        for step, celsius in enumerate(temperatures, start=1):
            at = T0 + timedelta(hours=6 * step)
            items.append((_vitals(pid, celsius, at), at + timedelta(minutes=5)))
    return write_bundle(tmp_path_factory.mktemp("backtest") / "bundle", accepted_wires(items))


def _candidate(tmp_path: Path, fever_c: float) -> Path:
    """The packaged trial file as a new version with another INF-01 fever threshold."""
    text = config_path().read_text(encoding="utf-8")
    text = text.replace('"NCT01724398.v1"', '"NCT01724398.v2-candidate"')
    text = re.sub(r"^fever_c = [0-9.]+", f"fever_c = {fever_c}", text, flags=re.MULTILINE)
    path = tmp_path / "candidate.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def live(bundle: Path) -> ReplayResult:
    return replay_bundle(bundle, as_of=None, config=load_config(), workers=1)


def _backtest(bundle: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(app, ["audit", "backtest", str(bundle), "--json", *args])
    report = json.loads(result.stdout) if result.exit_code == 0 else {}
    return result.exit_code, report, result.output


def _ids(result: ReplayResult, rule_id: str) -> set[str]:
    return {str(i.signal.event_id) for i in result.signals if i.signal.payload.rule_id == rule_id}


def _by_participant(report: dict[str, Any], names: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """(gained, lost, retimed) counts per participant letter."""
    letters = {pid: name for name, pid in names.items()}
    return {
        letters[p["participant_id"]]: (len(p["gained"]), len(p["lost"]), len(p["retimed"]))
        for p in report["participants"]
    }


def test_a_lower_fever_threshold_gains_one_participant_and_fires_earlier_for_another(
    bundle: Path, participants: dict[str, str], tmp_path: Path
) -> None:
    candidate = _candidate(tmp_path, 37.5)

    code, report, output = _backtest(
        bundle, "--rule", "INF-01", "--version", "1", "--candidate-config", str(candidate)
    )

    assert code == 0, output
    assert _by_participant(report, participants) == {"A": (1, 0, 0), "C": (0, 0, 1)}
    (retimed,) = [r for p in report["participants"] for r in p["retimed"]]
    assert retimed["shift_hours"] == -6.0
    assert (report["live_signals"], report["candidate_signals"]) == (2, 3)
    assert report["totals"]["changed"] == 0  # the stamped config version alone is no change


def test_a_higher_fever_threshold_loses_the_signals_below_it(
    bundle: Path, participants: dict[str, str], live: ReplayResult, tmp_path: Path
) -> None:
    candidate = _candidate(tmp_path, 38.5)

    code, report, output = _backtest(
        bundle, "--rule", "INF-01", "--version", "1", "--candidate-config", str(candidate)
    )

    assert code == 0, output
    assert _by_participant(report, participants) == {"B": (0, 1, 0), "C": (0, 1, 0)}
    lost = {b["signal_id"] for p in report["participants"] for b in p["lost"]}
    assert lost == _ids(live, "INF-01")


def test_the_live_rule_against_itself_is_identical(bundle: Path) -> None:
    code, report, output = _backtest(bundle, "--rule", "INF-01", "--version", "1")

    assert code == 0, output
    assert report["identical"] is True
    assert report["participants"] == []
    assert report["live_signals"] == report["candidate_signals"]


def test_a_version_the_engine_cannot_run_is_refused_with_the_reason(bundle: Path) -> None:
    code, _, output = _backtest(bundle, "--rule", "INF-01", "--version", "2")
    unknown, _, unknown_output = _backtest(bundle, "--rule", "NOPE-01", "--version", "1")

    assert code == 2
    assert "INF-01 has no version 2; the engine keeps v1" in output
    assert unknown == 2
    assert "no rule NOPE-01" in unknown_output


def test_a_signal_on_another_fact_is_retimed_and_one_outside_the_window_is_ignored(
    live: ReplayResult,
) -> None:
    first = live.signals[0]
    moved = first.signal.model_copy(
        update={"event_id": uuid5(NAMESPACE_URL, "moved"),
                "occurred_at": first.signal.occurred_at + timedelta(hours=6)}
    )  # fmt: skip
    candidate = _with(live, [ReplayedSignal(first.seq + 1, moved), *live.signals[1:]])
    rule = first.signal.payload.rule_id

    result = diff(rule, live, candidate, versions=("v1", "v1'"))
    outside = diff(
        rule, live, candidate, versions=("v1", "v1'"),
        window=(first.signal.occurred_at + timedelta(days=365), None),
    )  # fmt: skip

    assert len(result.participants) == 1
    (change,) = result.participants
    assert (change.gained, change.lost) == ((), ())
    assert [(r.live.signal_id, r.candidate.signal_id) for r in change.retimed] == [
        (str(first.signal.event_id), str(moved.event_id))
    ]
    assert change.retimed[0].shift == timedelta(hours=6)
    assert outside.identical


def _with(result: ReplayResult, signals: list[ReplayedSignal]) -> ReplayResult:
    return ReplayResult(result.as_of, result.config_version, result.rules, result.facts,
                        result.last_seq, result.participants, tuple(signals))  # fmt: skip


def test_a_candidate_version_runs_beside_the_live_one(tmp_path: Path) -> None:
    """VB-04 v2 (80 g/L during a bleed) against live v1 (70 g/L), on the same history."""
    pid = unique("BTVB")
    bleed_at, hb_at = T0 + timedelta(hours=2), T0 + timedelta(hours=12)
    melena = submission(
        "adverse_event_reported",
        {"ae_ref": unique("AE"), "term": "Melena", "ctcae_grade": 2, "seriousness_criteria": [],
         "relatedness_uc_msc": "not_related", "relatedness_plasma_exchange": "not_related",
         "expectedness": "expected", "outcome": "recovering"},
        participant_id=pid, occurred_at=bleed_at.isoformat(),
    )  # fmt: skip
    hb_75 = lab("718-7", 75, "g/L", participant_id=pid, occurred_at=hb_at.isoformat())
    items = [
        (enrolment(participant_id=pid, occurred_at=T0.isoformat()), T0),
        (melena, bleed_at + timedelta(minutes=5)),
        (hb_75, hb_at + timedelta(minutes=5)),
    ]
    bundle = write_bundle(tmp_path / "bundle", accepted_wires(items))

    code, report, output = _backtest(bundle, "--rule", "VB-04", "--version", "2")

    assert code == 0, output
    assert (report["live_signals"], report["candidate_signals"]) == (0, 1)
    (changed,) = report["participants"]
    assert changed["participant_id"] == pid
    assert (len(changed["gained"]), len(changed["lost"]), len(changed["retimed"])) == (1, 0, 0)
    assert report["live"].startswith("v1 ")
    assert report["candidate"] == "v2 (NCT01724398.v1+VB-04.v2)"
