"""INF-05 bacteraemia (core layer, one rule).

Source: RULES.md §4.3 INF-05 [DC] and the CDC/NHSN LCBI criteria (`clinical.organisms`): a
blood culture (LOINC 600-7; growth is normalised value 1, no growth 0) growing a recognised
pathogen counts from one set. A common skin commensal (coagulase-negative staphylococci,
Corynebacterium, Cutibacterium acnes, Bacillus non-anthracis, Micrococcus, viridans
streptococci, ...) counts only when the same organism (SNOMED CT code) grew from a second,
separate set: another culture collected at another time on the same or the consecutive
calendar day at the site [DC: two bottles of one draw share a collection time]. The
finding fires on whichever set completes the pair, late results included. A growth whose
organism is not on the wire fires (the two-set rule is then the investigator's). U0 to
investigator and safety officer; INF-07 procedure tag. Cultures are reported days after
collection: windows use collection time, and the signal says `late`.
"""

from __future__ import annotations

from typing import Final

from clinical.organisms import same_or_consecutive_days
from schemas import ClinicalFact, SignalRaised
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import Value
from services.rules.core.rules._lab_finding import LabRule, evaluate_lab_rule
from services.rules.core.rules._triggers import on
from services.rules.core.state import Observation, ParticipantState

RULE_ID: Final = "INF-05"
RULE_VERSION: Final = 1
_GROWTH: Final = 0.5  # flag values: 1 growth, 0 no growth


def grew(culture: Observation) -> bool:
    """Tell whether a blood culture result reports growth."""
    return culture.value >= _GROWTH


def second_sets(state: ParticipantState, culture: Observation) -> tuple[Observation, ...] | None:
    """What makes a growth bacteraemia: () for a pathogen, a commensal's other sets, or None.

    None when it is a commensal grown from this one set only (a probable contaminant).
    """
    if not grew(culture):
        return None
    if culture.organism is None or not culture.commensal:
        return ()
    partners = tuple(
        other
        for other in state.series("culture")
        if grew(other)
        and other.organism == culture.organism
        and other.at != culture.at
        and same_or_consecutive_days(other.at, culture.at)
    )
    return partners or None


def _describe(culture: Observation) -> str:
    grown = (
        "an organism (organism not on the wire: the commensal two-set rule is for the investigator)"
        if culture.organism is None
        else "a common skin commensal, from two separate sets"
        if culture.commensal
        else "a recognised pathogen"
    )
    return f"blood culture collected at {culture.at:%Y-%m-%d %H:%M} UTC grew {grown}"


def _values(culture: Observation, others: tuple[Observation, ...]) -> dict[str, Value]:
    if culture.organism is None:
        return {}
    return {
        "organism_snomed": culture.organism,
        "common_commensal": culture.commensal,
        "culture_sets": 1 + len(others),
    }


_RULE: Final = LabRule(
    RULE_ID,
    RULE_VERSION,
    "culture",
    "Positive blood culture",
    lambda o, _config: grew(o),
    _describe,
    "culture_growth",
    corroborate=second_sets,
    extra_values=_values,
)


#: Only a new blood culture (`evaluate_lab_rule`).
TRIGGERS: Final = on(kinds=(_RULE.kind,))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise INF-05 for a pathogen's growth, or a commensal's from two separate sets."""
    return evaluate_lab_rule(_RULE, state, fact, config)
