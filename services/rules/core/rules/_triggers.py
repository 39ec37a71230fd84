"""What can make a rule act on a fact (core layer): the engine's per-rule dispatch.

Most rules look at a fact only through `touched_ae` (AE reports, updates, corrections),
`fresh` (the observations of some kinds the fact contributed) or an `isinstance` test on
the fact, and return `(state, ())` unchanged otherwise. A rule module says so in
`TRIGGERS`; the engine then skips it for facts that cannot make it act, which gives the
same states and signals as running it (most of ~40 rules used to be called, and return early, on
every fact). A module without `TRIGGERS` runs on every fact, and so does every rule on a
`FactCorrected` (a correction can touch any AE or observation).

A declaration must name *every* way the rule can change the state or raise a signal:
- `facts`: fact types the rule reads directly (`isinstance`, `touched_ae`, an event id
  that only a fact of that type can carry); `touched_ae` reads `AE_FACTS`;
- `kinds`: the observation kinds it asks `fresh` for; a fact that contributes none of
  them (`_observing.contributed_kinds`) gets nothing from `fresh`;
- `active`: a test of the state under which the rule may act on *any* fact (SAE-02 keeps
  its clocks in step with the AEs on every fact while a clock is open). It is asked at the
  rule's turn in the fold, with the state the earlier rules left, like the rule itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    ClinicalFact,
    TreatmentAdministered,
)
from services.rules.core.state import ParticipantState

#: The facts `_shared.touched_ae` finds an AE for (besides corrections, which run all rules).
AE_FACTS: Final[tuple[type[ClinicalFact], ...]] = (AdverseEventReported, AdverseEventUpdated)
TREATMENT: Final[tuple[type[ClinicalFact], ...]] = (TreatmentAdministered,)


@dataclass(frozen=True, slots=True)
class Triggers:
    """The facts, contributed observation kinds and states that can make a rule act."""

    facts: tuple[type[ClinicalFact], ...] = ()
    kinds: frozenset[str] = frozenset()
    active: Callable[[ParticipantState], bool] | None = None


def on(
    *facts: type[ClinicalFact],
    kinds: tuple[str, ...] = (),
    active: Callable[[ParticipantState], bool] | None = None,
) -> Triggers:
    """Declare a rule's triggers: fact types, observation kinds, and a state test."""
    return Triggers(facts, frozenset(kinds), active)
