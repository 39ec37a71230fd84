"""VB-05 rebleed within 42 days (core layer, one rule).

Source: RULES.md §3 VB-05 (Baveno six-week horizon of an acute variceal bleed): a bleeding
AE (VB-01) whose onset is <= 42 days after a previous one. Bleeds closer than
`rebleed_min_gap_hours` (24 h [DC]) are one episode coded under two terms (haematemesis and
melaena), not a rebleed. U0 to investigator, safety officer and DSMB chair (chair within
24 h [DC]). Fires once per rebleeding AE; a late-reported earlier bleed makes a bleed already
on record a rebleed, and fires then.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, Role, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, days, hours
from services.rules.core.rules._alerting import Finding, ae_key, emit, late_values
from services.rules.core.rules._bleeding import is_bleeding_ae
from services.rules.core.rules._shared import touched_ae
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import AdverseEventState, ParticipantState

RULE_ID: Final = "VB-05"
RULE_VERSION: Final = 1
RECIPIENTS: Final = (Role.INVESTIGATOR, Role.SAFETY_OFFICER, Role.DSMB_CHAIR)


#: Acts only when a report or update touched a bleeding AE (`touched_ae`).
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise VB-05 for each rebleed this fact's bleeding AE takes part in."""
    touched = touched_ae(state, fact)
    if touched is None or not is_bleeding_ae(touched):
        return state, ()
    bleeds = sorted(
        state.adverse_events.subset(is_bleeding_ae), key=lambda ae: (ae.onset_at, ae.ae_ref)
    )
    signals: list[SignalRaised] = []
    for index, rebleed in enumerate(bleeds):
        before = _previous(bleeds[:index], rebleed, config)
        key = ae_key(RULE_ID, rebleed)
        if (
            before is None
            or key in state.raised
            or touched.ae_ref not in {rebleed.ae_ref, before.ae_ref}
        ):
            continue
        signals.append(emit(state, fact, _finding(fact, rebleed, before, config)))
        state = state.with_raised(key)
    return state, tuple(signals)


def _previous(
    earlier: list[AdverseEventState], rebleed: AdverseEventState, config: TrialConfig
) -> AdverseEventState | None:
    """The latest earlier bleed 24 h to 42 days before `rebleed` (closed interval)."""
    oldest = rebleed.onset_at - days(config.bleeding.rebleed_window_days)
    newest = rebleed.onset_at - hours(config.bleeding.rebleed_min_gap_hours)
    near = [ae for ae in earlier if oldest <= ae.onset_at <= newest]
    return near[-1] if near else None


def _finding(
    fact: ClinicalFact,
    rebleed: AdverseEventState,
    before: AdverseEventState,
    config: TrialConfig,
) -> Finding:
    gap_days = round((rebleed.onset_at - before.onset_at).total_seconds() / 86400, 2)
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "bleeding",
        "Rebleed within 42 days",
        Urgency.U0,
        RECIPIENTS,
        f"bleeding AE {rebleed.ae_ref} '{rebleed.term}' began {gap_days} days after bleeding AE "
        f"{before.ae_ref} '{before.term}' (within the 6-week Baveno horizon); inform the "
        "DSMB chair within 24 h",
        (*before.event_ids, *rebleed.event_ids),
        {
            "ae_ref": rebleed.ae_ref,
            "term": rebleed.term,
            "previous_ae_ref": before.ae_ref,
            "previous_term": before.term,
            "days_since_previous": gap_days,
            **late_values(fact, config),
        },
        (rebleed.event_ids[0], before.event_ids[0]),
    )
