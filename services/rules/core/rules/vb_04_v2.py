"""VB-04 version 2: the transfusion threshold is higher during a bleed (core layer, one rule).

Source: RULES.md §3 VB-04 (Villanueva 2013 / Baveno: restrictive threshold Hb < 70 g/L) and
§9 open question 3 (Baveno VII target 7-8 g/dL in acute variceal bleeding) [DC]: Hb below
70 g/L, or below 80 g/L when a bleeding AE of the VB term list began within the 72 h before
the result. U1 to the investigator. Version 1 (`vb_04`) stays runnable beside it; the
trial configuration (`[rule_versions]`) chooses which one is live, and every signal records
its `rule_version`. Episodes as v1 (family "VB-04").
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._alerting import INV, Finding, emit, fresh, late_values, note_episode
from services.rules.core.rules._bleeding import is_bleeding_ae
from services.rules.core.rules._triggers import on
from services.rules.core.state import AdverseEventState, Observation, ParticipantState

RULE_ID: Final = "VB-04"
RULE_VERSION: Final = 2


def _bleed_before(
    state: ParticipantState, hb: Observation, config: TrialConfig
) -> AdverseEventState | None:
    span = hours(config.bleeding.bleeding_context_hours)
    bleeds = [
        ae
        for ae in state.adverse_events.subset(is_bleeding_ae)
        if hb.at - span <= ae.onset_at <= hb.at
    ]
    return max(bleeds, key=lambda ae: (ae.onset_at, ae.ae_ref), default=None)


#: Only a new Hb result (`fresh`); bleeding AEs are read for its threshold, never acted on.
TRIGGERS: Final = on(kinds=("hb",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise VB-04 v2 for Hb < 70 g/L, or < 80 g/L within 72 h of a bleeding AE's onset."""
    signals: list[SignalRaised] = []
    for hb in fresh(state, fact, "hb"):
        bleed = _bleed_before(state, hb, config)
        cfg = config.bleeding
        threshold = cfg.hb_low_g_l if bleed is None else cfg.hb_low_bleeding_g_l
        if hb.value >= threshold:
            continue
        state, fire = note_episode(state, fact, family=RULE_ID, at=hb.at, level=1, config=config)
        if not fire:
            continue
        context = "" if bleed is None else f" during bleeding AE {bleed.ae_ref} '{bleed.term}'"
        evidence = (hb.event_id,) if bleed is None else (hb.event_id, *bleed.event_ids)
        finding = Finding(
            RULE_ID,
            RULE_VERSION,
            "bleeding",
            "Haemoglobin below transfusion threshold",
            Urgency.U1,
            INV,
            f"Hb {hb.value:g} g/L is below {threshold:g} g/L{context} "
            "(restrictive transfusion threshold; Baveno VII 7-8 g/dL during a bleed)",
            evidence,
            {
                "hb_g_l": hb.value,
                "threshold_g_l": threshold,
                "bleeding_ae_ref": None if bleed is None else bleed.ae_ref,
                **late_values(fact, config),
            },
            (hb.event_id,),
        )
        signals.append(emit(state, fact, finding))
    return state, tuple(signals)
