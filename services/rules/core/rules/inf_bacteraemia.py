"""INF-05 bacteraemia (core layer, one rule).

Source: RULES.md §4.3 INF-05 [DC]: a blood culture (LOINC 600-7) growing an organism; the
wire carries growth as normalised value 1 (0 = no growth). The NHSN rule for skin
commensals (>= 2 separate sets) [UNCONF] needs the organism, which the contract does not
carry: every growth fires. U0 to investigator and safety officer; INF-07 procedure tag.
Cultures are reported days after collection: windows use collection time, and the signal
says `late`.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised
from services.rules.core.config import TrialConfig
from services.rules.core.rules._lab_finding import LabRule, evaluate_lab_rule
from services.rules.core.rules._triggers import on
from services.rules.core.state import Observation, ParticipantState

RULE_ID: Final = "INF-05"
RULE_VERSION: Final = 1
_GROWTH: Final = 0.5  # flag values: 1 growth, 0 no growth


def grew(culture: Observation) -> bool:
    """Tell whether a blood culture result reports growth."""
    return culture.value >= _GROWTH


_RULE: Final = LabRule(
    RULE_ID,
    RULE_VERSION,
    "culture",
    "Positive blood culture",
    lambda o, _config: grew(o),
    lambda o: (
        "blood culture collected at "
        f"{o.at:%Y-%m-%d %H:%M} UTC grew an organism (organism not on the wire: "
        "the commensal two-set rule is for the investigator)"
    ),
    "culture_growth",
)


#: Only a new blood culture (`evaluate_lab_rule`).
TRIGGERS: Final = on(kinds=(_RULE.kind,))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise INF-05 for a blood culture with growth."""
    return evaluate_lab_rule(_RULE, state, fact, config)
