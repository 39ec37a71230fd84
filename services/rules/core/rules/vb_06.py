"""VB-06 plasma-exchange bleeding-risk context (core layer, one rule).

Source: RULES.md §3 VB-06 (CTCAE v5 grade 3 thresholds; DC window): on a PE day, platelets
< 50 x10^9/L or INR > 2.5 in the 24 h before the session starts (closed interval) annotates
the session for the DSMB AESI table. U2 (digest) to investigator and safety officer. Fires
once per PE session, from the session or from a late platelet / INR result.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, TreatmentAdministered, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._alerting import INV_SO, Finding, emit, fresh, late_values
from services.rules.core.rules._procedures import PE
from services.rules.core.rules._triggers import TREATMENT, on
from services.rules.core.state import Observation, ParticipantState, Procedure

RULE_ID: Final = "VB-06"
RULE_VERSION: Final = 1


#: A PE session (a treatment fact) or a new platelet or INR result.
TRIGGERS: Final = on(*TREATMENT, kinds=("platelets", "inr"))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise VB-06 for each PE session whose prior 24 h show the bleeding-risk labs."""
    lookback = hours(config.bleeding.pe_risk_lookback_hours)
    new_labs = fresh(state, fact, "platelets", "inr")
    if not new_labs and not isinstance(fact, TreatmentAdministered):
        return state, ()
    signals: list[SignalRaised] = []
    for session in state.procedures:
        key = f"{RULE_ID}|proc:{session.event_id}"
        if session.treatment != PE or key in state.raised:
            continue
        if session.event_id != fact.event_id and not any(
            session.started_at - lookback <= o.at <= session.started_at for o in new_labs
        ):
            continue
        risky = _risky(state, session, config)
        if risky:
            signals.append(emit(state, fact, _finding(fact, session, risky, config)))
            state = state.with_raised(key)
    return state, tuple(signals)


def _risky(state: ParticipantState, session: Procedure, config: TrialConfig) -> list[Observation]:
    since = session.started_at - hours(config.bleeding.pe_risk_lookback_hours)
    labs = [o for o in state.series("platelets", "inr") if since <= o.at <= session.started_at]
    return [
        o
        for o in labs
        if (o.kind == "platelets" and o.value < config.bleeding.pe_risk_platelets_e9_l)
        or (o.kind == "inr" and o.value > config.bleeding.pe_risk_inr)
    ]


def _finding(
    fact: ClinicalFact, session: Procedure, risky: list[Observation], config: TrialConfig
) -> Finding:
    platelets = [o.value for o in risky if o.kind == "platelets"]
    inr = [o.value for o in risky if o.kind == "inr"]
    found = ([f"platelets {min(platelets):g} x10^9/L"] if platelets else []) + (
        [f"INR {max(inr):g}"] if inr else []
    )
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "bleeding",
        "Plasma exchange with bleeding-risk labs",
        Urgency.U2,
        INV_SO,
        f"plasma exchange started with {' and '.join(found)} in the prior 24 h (CTCAE grade 3)",
        (session.event_id, *(o.event_id for o in risky)),
        {
            "procedure_event_id": str(session.event_id),
            "platelets_min_e9_l": min(platelets) if platelets else None,
            "inr_max": max(inr) if inr else None,
            **late_values(fact, config),
        },
        (session.event_id, *(o.event_id for o in risky)),
    )
