"""PE-05 catheter complication after plasma exchange (core layer, one rule).

Source: RULES.md §4.5 PE-05 [DC]: the exchange needs central venous access in coagulopathic
patients. An AE naming the catheter or access site [DC word list] with onset within 72 h
after a PE start [DC; W_INF_PE stands in for "catheter in place" until catheter removal is
a fact]:
- thrombosis or embolism at the catheter → U1 to investigator and safety officer;
- bleeding or haematoma at the access site → U1 to the same people, with the note that the
  Hb rules VB-03/VB-04 apply (they fire on the haemoglobin results themselves);
- catheter infection is INF-08's and is not signalled here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from clinical.codes import (
    ACCESS_BLEEDING_WORDS,
    CATHETER_WORDS,
    INFECTION_LLT,
    INFECTION_WORDS,
    THROMBOEMBOLIC_WORDS,
    term_has_word,
)
from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._ae_window import AEWindowRule, evaluate_ae_window_rule
from services.rules.core.rules._alerting import INV_SO
from services.rules.core.rules._procedures import PE, latest_started_within
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import AdverseEventState, ParticipantState, Procedure

RULE_ID: Final = "PE-05"
RULE_VERSION: Final = 1
_NONE: Final[frozenset[str]] = frozenset()


def _has(ae: AdverseEventState, words: tuple[str, ...]) -> bool:
    return term_has_word(ae.term, None, words=words, llts=_NONE)


def is_catheter_complication(ae: AdverseEventState) -> bool:
    """A thrombosis or bleeding AE at the catheter or access site (not an infection)."""
    infection = term_has_word(
        ae.term, ae.meddra_llt_code, words=INFECTION_WORDS, llts=INFECTION_LLT
    )
    return (
        _has(ae, CATHETER_WORDS)
        and not infection
        and (_has(ae, THROMBOEMBOLIC_WORDS) or _has(ae, ACCESS_BLEEDING_WORDS))
    )


def _session(state: ParticipantState, at: datetime, config: TrialConfig) -> Procedure | None:
    return latest_started_within(state, at, PE, hours(config.procedures.catheter_hours))


_RULE: Final = AEWindowRule(
    RULE_ID,
    RULE_VERSION,
    "plasma_exchange",
    "Catheter complication after plasma exchange",
    "72 h after PE start (catheter in place)",
    is_catheter_complication,
    _session,
    lambda _ae: Urgency.U1,
    INV_SO,
)


#: Acts only on the AE a report or update just set (`touched_ae`). (`evaluate_ae_window_rule`)
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise PE-05 for a catheter thrombosis or access-site bleed after a plasma exchange."""
    step_state, signals = evaluate_ae_window_rule(_RULE, state, fact, config)
    return step_state, tuple(_annotated(s) for s in signals)


def _annotated(signal: SignalRaised) -> SignalRaised:
    """Name the kind of complication, and the Hb rules an access-site bleed defers to."""
    term = str(signal.payload.values.get("term", ""))
    bleeding = term_has_word(term, None, words=ACCESS_BLEEDING_WORDS, llts=_NONE)
    extra = {"complication": "bleeding" if bleeding else "thrombosis"}
    reason = signal.payload.reason
    if bleeding:
        extra["note"] = "access-site bleeding: the Hb rules VB-03/VB-04 apply"
        reason += "; access-site bleeding: the Hb rules VB-03/VB-04 apply"
    payload = signal.payload.model_copy(
        update={"values": {**signal.payload.values, **extra}, "reason": reason[:1000]}
    )
    return signal.model_copy(update={"payload": payload})
