"""PE-01 citrate hypocalcaemia during plasma exchange (core layer, one rule).

Source: RULES.md §4.5 PE-01 (CTCAE v5 Hypocalcemia, ionised: G1 < LLN-1.0, G2 < 1.0-0.9,
G3 < 0.9-0.8, G4 < 0.8 mmol/L; Kaplan: citrate toxicity is the commonest TPE complication
and hepatic insufficiency slows citrate clearance): an ionised calcium (LOINC 1994-3 /
1995-0) inside `W_IR_PE` = [PE start, PE end + 6 h]: G1 -> U2, G2 -> U1, G3-4 -> U0. The
lab's LLN is used, else 1.12 mmol/L [DC]. Paraesthesia / tetany / cramp (or hypocalcaemia)
AEs in the window -> U1. Corrected total calcium is not used (RULES.md prefers iCa in
hypoalbuminaemia). RULES.md names no recipients: investigator and safety officer [DC].
Fires once per session and grade, again only for a higher grade.
"""

from __future__ import annotations

from typing import Final

from clinical.codes import CITRATE_LLT, CITRATE_TERMS, term_in
from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._ae_window import AEWindowRule, evaluate_ae_window_rule
from services.rules.core.rules._alerting import (
    INV_SO,
    Finding,
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._procedures import PE, latest_reaction, procedure_values
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import Observation, ParticipantState, Procedure

RULE_ID: Final = "PE-01"
RULE_VERSION: Final = 1
URGENCY: Final = {1: Urgency.U2, 2: Urgency.U1, 3: Urgency.U0, 4: Urgency.U0}
_SYMPTOMS: Final = AEWindowRule(
    RULE_ID,
    RULE_VERSION,
    "plasma_exchange",
    "Citrate toxicity symptoms after plasma exchange",
    "W_IR_PE",
    lambda ae: term_in(ae.term, ae.meddra_llt_code, terms=CITRATE_TERMS, llts=CITRATE_LLT),
    lambda state, at, config: latest_reaction(state, at, PE, config),
    lambda _ae: Urgency.U1,
    INV_SO,
)


def grade(ica: Observation, config: TrialConfig) -> int:
    """CTCAE v5 grade of an ionised calcium (0 when not below the LLN)."""
    cfg = config.procedures
    lln = cfg.ica_lln_default_mmol_l if ica.low is None else ica.low
    thresholds = (
        (cfg.ica_grade4_mmol_l, 4),
        (cfg.ica_grade3_mmol_l, 3),
        (cfg.ica_grade2_mmol_l, 2),
        (lln, 1),
    )
    return next((g for limit, g in thresholds if ica.value < limit), 0)


#: The AE a report or update just set (symptoms), or a new ionised calcium.
TRIGGERS: Final = on(*AE_FACTS, kinds=("ica",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise PE-01 for a low ionised calcium or citrate symptoms in W_IR_PE."""
    state, from_symptoms = evaluate_ae_window_rule(_SYMPTOMS, state, fact, config)
    signals = list(from_symptoms)
    for ica in fresh(state, fact, "ica"):
        session = latest_reaction(state, ica.at, PE, config)
        level = grade(ica, config)
        if session is None or level == 0 or _signalled(state, session, level):
            continue
        state, _ = note_episode(state, fact, family=RULE_ID, at=ica.at, level=level, config=config)
        signals.append(emit(state, fact, _finding(fact, ica, session, level, config)))
        state = state.with_raised(f"{RULE_ID}|proc:{session.event_id}|G{level}")
    return state, tuple(signals)


def _signalled(state: ParticipantState, session: Procedure, level: int) -> bool:
    return any(f"{RULE_ID}|proc:{session.event_id}|G{g}" in state.raised for g in range(level, 5))


def _finding(
    fact: ClinicalFact, ica: Observation, session: Procedure, level: int, config: TrialConfig
) -> Finding:
    lln = config.procedures.ica_lln_default_mmol_l if ica.low is None else ica.low
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "plasma_exchange",
        "Low ionised calcium after plasma exchange",
        URGENCY[level],
        INV_SO,
        f"ionised calcium {ica.value:g} mmol/L (LLN {lln:g}) within W_IR_PE: CTCAE "
        f"hypocalcaemia grade {level} (citrate)",
        (ica.event_id, session.event_id),
        {
            "ionised_calcium_mmol_l": ica.value,
            "lln_mmol_l": lln,
            "lln_assumed": ica.low is None,
            "ctcae_grade": level,
            **procedure_values(session, ica.at, window="W_IR_PE"),
            **late_values(fact, config),
        },
        (ica.event_id, session.event_id),
    )
