"""Bleeding definitions shared by the VB rules (core layer): terms and Hb-drop pairs.

Source: RULES.md §3. Hb drops compare any two haemoglobin results at most 24 h apart
(Baveno IV/V "Hb drop of 3 g/dL within any 24 h without transfusion"); values are g/L, the
canonical unit, and differences are rounded to 1e-9 so that 102 -> 72 is exactly 30.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clinical.codes import BLEEDING_LLT, BLEEDING_TERMS, term_in
from schemas import ClinicalFact
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._alerting import fresh
from services.rules.core.rules._procedures import RBC, end_of
from services.rules.core.state import AdverseEventState, Observation, ParticipantState, Procedure

HB_FAMILY = "VB-02/03"


def is_bleeding_ae(ae: AdverseEventState) -> bool:
    """RULES.md VB term list, or one of the CTCAE bleeding LLTs of §0.6."""
    return term_in(ae.term, ae.meddra_llt_code, terms=BLEEDING_TERMS, llts=BLEEDING_LLT)


@dataclass(frozen=True, slots=True)
class HbDrop:
    """Two Hb results at most the drop window apart, the fall between them, transfusions."""

    earlier: Observation
    later: Observation
    drop: float
    transfusions: tuple[Procedure, ...]

    @property
    def hours(self) -> float:
        """Hours between the two specimens."""
        return round((self.later.at - self.earlier.at).total_seconds() / 3600, 2)


def hb_drops(state: ParticipantState, fact: ClinicalFact, config: TrialConfig) -> list[HbDrop]:
    """Every Hb pair within the window that involves a result this fact contributed."""
    new_results = fresh(state, fact, "hb")
    if not new_results:
        return []
    window = hours(config.bleeding.hb_drop_window_hours)
    found: list[HbDrop] = []
    series = state.series("hb")
    for new in new_results:
        mine = new.event_id.int  # UUIDs are equal exactly when their ints are (compared in C)
        for other in series:
            if other.event_id.int == mine or other.at == new.at:
                continue
            earlier, later = (other, new) if other.at < new.at else (new, other)
            if later.at - earlier.at <= window:
                drop = round(earlier.value - later.value, 9)
                found.append(
                    HbDrop(earlier, later, drop, _transfused(state, earlier.at, later.at, config))
                )
    return found


def largest(drops: list[HbDrop]) -> HbDrop | None:
    """The largest fall (the latest pair on ties)."""
    return max(drops, key=lambda d: (d.drop, d.later.at, d.earlier.at), default=None)


def _transfused(
    state: ParticipantState, start: datetime, end: datetime, config: TrialConfig
) -> tuple[Procedure, ...]:
    """RBC transfusions running at any time in (start, end]."""
    return tuple(
        p
        for p in state.procedures
        if p.treatment == RBC and p.started_at <= end and end_of(p, config) > start
    )
