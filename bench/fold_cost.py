"""Per-fact fold cost of one participant against the size of its history.

    python bench/fold_cost.py [--sizes 50 5000 50000] [--facts 200] [--kinds ae lab procedure]

For each kind of history and each size N, a participant's state holds N earlier facts of
that kind; the next `--facts` facts of the same kind are then folded one by one through
`engine.evaluate_guarded` (the fold live processing and the audit replay share), and the
mean CPU time per fact is printed, with `os.getloadavg()` beside it (the 2 cores are
shared, so read figures taken under load with care).

- ae: N distinct grade-1 AEs (one report each, an hour apart), then new AE reports. AEs
  are never pruned, so this history grows without bound. The state is built directly
  (the fold before the fix was quadratic here: 50,000 reports took hours).
- lab: N lab results an hour apart, rotating over analytes, folded (pruning bounds what
  is kept to each kind's retention window).
- procedure: N vasopressor administrations an hour apart, folded (non-protocol
  treatments are pruned after the default retention).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from schemas import AdverseEventReported, ClinicalFact, Treatment
from services.rules.core.config import TrialConfig
from services.rules.core.engine import evaluate_guarded
from services.rules.core.projection import ae_state
from services.rules.core.state import AdverseEvents, ParticipantState
from services.rules.core.state_codec import decode_state, encode_state
from tests.unit.rules.factories import (
    T0,
    ae_reported,
    enrolled,
    lab_result,
    procedure,
)

CONFIG = Path(__file__).parents[1] / "services/rules/trial_config/NCT01724398.v1.toml"
ANALYTES = (("hb", 120.0), ("sodium", 138.0), ("platelets", 150.0), ("crp", 5.0))
PID = "P-BENCH"


def _at(index: int) -> dict[str, Any]:
    return {"at": T0 + timedelta(hours=index)}


def ae_fact(index: int) -> ClinicalFact:
    """A grade-1, non-serious AE report with its own reference, `index` hours after T0."""
    payload = {"ae_ref": f"AE-{index:06d}", "grade": 1, "term": "Nausea"}
    return ae_reported(PID, env=_at(index), **payload)


def lab_fact(index: int) -> ClinicalFact:
    """A lab result in the normal range, the analyte rotating with `index`."""
    analyte, value = ANALYTES[index % len(ANALYTES)]
    return lab_result(PID, analyte, value, **_at(index))


def procedure_fact(index: int) -> ClinicalFact:
    """A 30-minute vasopressor administration, `index` hours after T0."""
    return procedure(PID, Treatment.VASOPRESSOR, minutes=30, **_at(index))


FACTS: dict[str, Callable[[int], ClinicalFact]] = {
    "ae": ae_fact,
    "lab": lab_fact,
    "procedure": procedure_fact,
}


def ae_history(size: int, config: TrialConfig) -> ParticipantState:
    """An enrolled participant with `size` AEs, built as the fold would have built them."""
    state = evaluate_guarded(None, enrolled(PID, at=T0 - timedelta(days=1)), config).state
    assert state is not None
    aes = []
    for index in range(size):
        fact = ae_fact(index)
        assert isinstance(fact, AdverseEventReported)
        aes.append(ae_state(fact.payload, fact.occurred_at, (fact.event_id,)))
    clock = T0 + timedelta(hours=size)
    return decode_state(
        encode_state(
            ParticipantState(
                state.trial_id,
                state.participant_id,
                state.site_id,
                arm=state.arm,
                enrolled_at=state.enrolled_at,
                adverse_events=AdverseEvents.of(aes),
                raised=state.raised,
                clock=clock,
                baseline_meld=state.baseline_meld,
            )
        )
    )


def folded_history(kind: str, size: int, config: TrialConfig) -> ParticipantState:
    """An enrolled participant after `size` facts of `kind`, folded."""
    state = evaluate_guarded(None, enrolled(PID, at=T0 - timedelta(days=1)), config).state
    make = FACTS[kind]
    for index in range(size):
        state = evaluate_guarded(state, make(index), config).state
    assert state is not None
    return state


def history(kind: str, size: int, config: TrialConfig) -> ParticipantState:
    """The state holding `size` earlier facts of `kind`."""
    return ae_history(size, config) if kind == "ae" else folded_history(kind, size, config)


def per_fact(
    state: ParticipantState, kind: str, start: int, count: int, config: TrialConfig
) -> float:
    """Mean CPU seconds to fold each of the `count` facts of `kind` after `start`."""
    make = FACTS[kind]
    facts = [make(start + index) for index in range(count + 3)]
    for fact in facts[:3]:  # warm-up: lazily built indexes and memos
        state = _fold(state, fact, config)
    began = time.process_time()
    for fact in facts[3:]:
        state = _fold(state, fact, config)
    return (time.process_time() - began) / count


def _fold(state: ParticipantState, fact: ClinicalFact, config: TrialConfig) -> ParticipantState:
    after = evaluate_guarded(state, fact, config).state
    assert after is not None
    return after


def rows(kinds: list[str], sizes: list[int], count: int) -> Iterator[str]:
    """One printed line per (kind, size)."""
    config = TrialConfig.from_mapping(tomllib.loads(CONFIG.read_text(encoding="utf-8")))
    for kind in kinds:
        for size in sizes:
            state = history(kind, size, config)
            seconds = per_fact(state, kind, size, count, config)
            load = " ".join(f"{value:.2f}" for value in os.getloadavg())
            yield f"{kind:<10} history {size:>7,}  {seconds * 1e3:8.3f} ms/fact  load {load}"


def main() -> None:
    """Print the per-fact fold time of each kind at each history size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 5_000, 50_000])
    parser.add_argument("--facts", type=int, default=200)
    parser.add_argument("--kinds", nargs="+", default=list(FACTS), choices=list(FACTS))
    options = parser.parse_args()
    for line in rows(options.kinds, options.sizes, options.facts):
        print(line, flush=True)


if __name__ == "__main__":
    main()
