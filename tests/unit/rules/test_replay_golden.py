"""Golden replay: a fixed demo history gives the very signal and state bytes it gave before.

The digests in `replay_golden.json` were recorded from the rules engine *before* the replay
performance work, so this is an honest regression check that every optimisation
of `services/rules/core` is output-preserving: same facts, same signals (their JSON bytes,
ids included, in the same order) and same final states (`state_codec.encode_state`).

Two histories, both deterministic (no uuid4, no clock):
- "realistic": 40 participants of the demo feed (seed 1724398, 12 weeks), recorded in
  arrival order a few minutes after the newest clinical time seen (so late cultures are late),
  with deterministic corrections and retractions of some labs, vitals and AEs and hourly
  clock ticks, under the v2 trial configuration (VB-04 v2, SAE-02 clocks, retractions);
- "bench": the prefix `bench/replay_1m.py` replays (`generate_events`, recorded one second
  apart from 2024-01-01), under the v1 configuration the audit replay uses by default.

Only a deliberate change of what the rules decide may rewrite the file:
`python -m tests.unit.rules.test_replay_golden --write` (say why in the commit).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest

from schemas import LOG_FACT_ADAPTER, ClockTicked, FactCorrected, canonical_bytes
from services.ingest.core.accept import Accepted, accept
from services.rules.core.config import TrialConfig
from services.rules.core.fold import replay
from services.rules.core.state_codec import encode_state
from tools.demo.generator import HISTORIC_START, generate_events, iter_feed

GOLDEN = Path(__file__).with_name("replay_golden.json")
CONFIGS = Path(__file__).parents[3] / "services" / "rules" / "trial_config"
NS = UUID("5a3c1d2e-8f4b-4c6a-9e1d-7b2f0a9c4e61")
SEED = 1724398
BENCH_EVENTS = 3_000
BENCH_START = datetime(2024, 1, 1, tzinfo=UTC)
Replayable = Any  # an arriving fact or a ClockTicked, as `replay` takes them


def _config(name: str) -> TrialConfig:
    return TrialConfig.from_mapping(tomllib.loads((CONFIGS / name).read_text(encoding="utf-8")))


def _decoded(item: dict[str, Any], recorded_at: datetime) -> Replayable:
    """The fact as the log holds it: accepted by ingest, then decoded from its bytes."""
    outcome = accept(item, recorded_at=recorded_at, actor="golden")
    assert isinstance(outcome, Accepted), outcome
    return LOG_FACT_ADAPTER.validate_json(canonical_bytes(outcome.wire))


def _tick(at: datetime, number: int) -> ClockTicked:
    return ClockTicked(
        event_id=uuid5(NS, f"tick:{number}"),
        trial_id="NCT01724398",
        occurred_at=at,
        recorded_at=at,
        source="safetymon-clock",
        source_ref=f"tick:{number}",
        actor="safetymon-ingest",
        payload={"period_seconds": 3600},
    )


def _correction(fact: Any, number: int, recorded_at: datetime) -> FactCorrected | None:
    """Every other correction retracts; the rest change a lab value, the vitals or an AE."""
    payload = fact.payload.model_dump(mode="json")
    if number % 2 == 0:
        replacement = None
    elif fact.event_type == "lab_result_recorded":
        payload["result"]["value"] = round(payload["result"]["value"] * 0.6, 3)
        payload["result"].pop("normalised_value", None)
        payload["result"].pop("normalised_unit", None)
        replacement = payload
    elif fact.event_type == "vital_signs_recorded":
        for quantity in payload["observations"].values():
            quantity["value"] = round(quantity["value"] * 1.3, 1)
            quantity.pop("normalised_value", None)
            quantity.pop("normalised_unit", None)
        replacement = payload
    elif fact.event_type in {"adverse_event_reported", "adverse_event_updated"}:
        payload["ctcae_grade"] = max(1, payload["ctcae_grade"] - 1)
        payload["seriousness_criteria"] = []
        replacement = payload
    else:
        return None
    return FactCorrected(
        event_id=uuid5(NS, f"correction:{number}"),
        trial_id=fact.trial_id,
        site_id=fact.site_id,
        participant_id=fact.participant_id,
        occurred_at=fact.occurred_at,
        recorded_at=recorded_at,
        source="edc",
        source_ref=f"correction:{number}",
        actor="golden",
        payload={
            "supersedes_event_id": fact.event_id,
            "reason": "golden replay correction",
            "replacement": replacement,
        },
    )


def realistic_history() -> Iterator[Replayable]:
    """The demo feed in arrival order, with corrections and clock ticks every 4 h."""
    now = datetime(2024, 1, 1, tzinfo=UTC)
    pending: list[tuple[int, Any]] = []  # (due index, fact to correct)
    next_tick, ticks, corrections = now, 0, 0
    feed = iter_feed(seed=SEED, participants=40, weeks=12, start=HISTORIC_START)
    for index, item in enumerate(feed):
        occurred = datetime.fromisoformat(item["occurred_at"])
        now = max(now + timedelta(seconds=7), occurred + timedelta(minutes=5 + index % 11))
        while next_tick <= now:
            yield _tick(next_tick, ticks)
            next_tick, ticks = next_tick + timedelta(hours=4), ticks + 1
        fact = _decoded(item, now)
        yield fact
        if index % 37 == 5 and fact.event_type != "participant_enrolled":
            pending.append((index + 23, fact))
        while pending and pending[0][0] <= index:
            _, target = pending.pop(0)
            correction = _correction(target, corrections, now + timedelta(seconds=1))
            corrections += 1
            if correction is not None:
                yield correction


def bench_history() -> Iterator[Replayable]:
    """The facts `bench/replay_1m.py` logs, as its replay decodes them."""
    for index, item in enumerate(generate_events(BENCH_EVENTS, seed=SEED, start=HISTORIC_START)):
        yield _decoded(item, BENCH_START + timedelta(seconds=index))


def digest(facts: Iterable[Replayable], config: TrialConfig) -> dict[str, Any]:
    """Replay `facts` and fingerprint every signal's JSON bytes and every final state."""
    counted = Counter[str]()

    def counting() -> Iterator[Replayable]:
        for fact in facts:
            counted[fact.event_type] += 1
            yield fact

    states, signals = replay(counting(), config)
    signal_hashes = [hashlib.sha256(s.model_dump_json().encode()).hexdigest() for s in signals]
    state_bytes = b"\n".join(encode_state(states[key]).encode() for key in sorted(states))
    return {
        "facts": dict(sorted(counted.items())),
        "signals": len(signals),
        "signals_by_rule": dict(sorted(Counter(s.payload.rule_id for s in signals).items())),
        "signals_sha256": hashlib.sha256("".join(signal_hashes).encode()).hexdigest(),
        "states_sha256": hashlib.sha256(state_bytes).hexdigest(),
        "signal_sha256_prefixes": [h[:16] for h in signal_hashes],
    }


def current() -> dict[str, dict[str, Any]]:
    """Fingerprints of both golden histories under the current rules engine."""
    return {
        "realistic": digest(realistic_history(), _config("NCT01724398.v2.toml")),
        "bench": digest(bench_history(), _config("NCT01724398.v1.toml")),
    }


def _first_difference(expected: list[str], actual: list[str]) -> int | None:
    pairs = itertools.zip_longest(expected, actual)
    return next((i for i, (e, a) in enumerate(pairs) if e != a), None)


@pytest.mark.slow
def test_replay_gives_the_recorded_signal_and_state_bytes() -> None:
    """Replay determinism: the golden histories give byte-identical outputs."""
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))

    actual = current()

    for name in ("realistic", "bench"):
        want, got = expected[name], actual[name]
        at = _first_difference(want["signal_sha256_prefixes"], got["signal_sha256_prefixes"])
        assert (name, at) == (name, None), f"{name}: first differing signal #{at}"
        assert got == want


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.unit.rules.test_replay_golden --write")
    GOLDEN.write_text(json.dumps(current(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
