"""Profile the rules engine the way the audit replay drives it, on a demo-feed prefix.

    python bench/profile_rules.py [--events 30000] [--top 40] [--sort tottime]
                                  [--time-only] [--repeat N] [--reference]

The facts are those `bench/replay_1m.py` logs (its first N): demo submissions accepted by
ingest (validation, unit normalisation), recorded one second apart from 2024-01-01, then
decoded from their canonical bytes with the log's adapter, as the audit replay decodes them.
They are built before the clock starts, so only the fold is measured: `evaluate_guarded` per
fact with the state dict by participant, and each signal's JSON bytes (what the audit replay
keeps), under the packaged v1 trial configuration the audit replay uses by default.

Prints the CPU microseconds per event of a plain run, then (unless --time-only) the top
functions of a cProfile run of the same facts. `--reference` folds every rule on every fact
(`dispatch=False`, the engine's reference path) instead of each fact's planned rules.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas import LOG_FACT_ADAPTER, ClinicalFact, canonical_bytes
from services.ingest.core.accept import Accepted, accept
from services.rules.core.config import TrialConfig
from services.rules.core.engine import evaluate_guarded
from services.rules.core.state import ParticipantState
from tools.demo.generator import HISTORIC_START, generate_events

START = datetime(2024, 1, 1, tzinfo=UTC)  # as bench/replay_1m.py records them
CONFIG = Path(__file__).parents[1] / "services/rules/trial_config/NCT01724398.v1.toml"


def facts(n: int) -> list[ClinicalFact]:
    """The first `n` facts of the 1M benchmark log, decoded as the audit replay does."""
    out: list[Any] = []
    for index, item in enumerate(generate_events(n, start=HISTORIC_START)):
        outcome = accept(item, recorded_at=START + timedelta(seconds=index), actor="bench")
        if isinstance(outcome, Accepted):
            out.append(LOG_FACT_ADAPTER.validate_json(canonical_bytes(outcome.wire)))
    return out


def fold(history: Sequence[ClinicalFact], config: TrialConfig, *, dispatch: bool = True) -> int:
    """The audit replay's per-fact loop (without its views); returns the signal count."""
    states: dict[tuple[str, str], ParticipantState] = {}
    signals = 0
    for fact in history:
        key = (fact.trial_id, fact.participant_id)
        outcome = evaluate_guarded(states.get(key), fact, config, dispatch=dispatch)
        if outcome.state is not None:
            states[key] = outcome.state
        signals += sum(1 for signal in outcome.signals if signal.model_dump_json())
    return signals


def main() -> None:
    """Build the facts, time a plain fold, then profile one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime", help="pstats key: tottime, cumulative")
    parser.add_argument("--time-only", action="store_true", help="no cProfile run")
    parser.add_argument("--repeat", type=int, default=1, help="timed folds before profiling")
    parser.add_argument("--reference", action="store_true", help="run every rule on every fact")
    options = parser.parse_args()
    config = TrialConfig.from_mapping(tomllib.loads(CONFIG.read_text(encoding="utf-8")))
    started = time.perf_counter()
    history = facts(options.events)
    print(f"{len(history):,} facts built in {time.perf_counter() - started:.1f} s")
    dispatch = not options.reference
    label = "fold" if dispatch else "fold (every rule)"
    for _ in range(options.repeat):  # the cores are shared: read the best of a few
        cpu = time.process_time()
        signals = fold(history, config, dispatch=dispatch)
        spent = time.process_time() - cpu
        print(f"{label}: {signals:,} signals, {spent:.2f} s CPU, "
              f"{spent / len(history) * 1e6:,.1f} µs/event")  # fmt: skip
    if options.time_only:
        return
    profiler = cProfile.Profile()
    profiler.runcall(fold, history, config, dispatch=dispatch)
    pstats.Stats(profiler).strip_dirs().sort_stats(options.sort).print_stats(options.top)


if __name__ == "__main__":
    main()
