"""HE-01 new-onset overt hepatic encephalopathy (core layer, one rule).

Source: RULES.md §2 HE-01 (West Haven criteria, AASLD/EASL 2014 guideline): an assessment
with WH >= 2 where every WH assessment since randomisation, or in the prior 14 days if that
is shorter [DC], was <= 1. WH 2 -> U1, WH 3-4 -> U0 (CLIF-C brain failure); investigator and
safety officer. HE-03: an AE coded hepatic encephalopathy / encephalopathy / hepatic coma is
evaluated the same way with its CTCAE grade as the WH grade. HE-04 (ammonia) and HE-05
(precipitants) annotate the signal. Episodes follow RULES.md §0.2 (family "HE", level = WH
grade): a later grade re-fires only when higher, or after the 72 h quiet period.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised
from services.rules.core.config import TrialConfig
from services.rules.core.rules import _he
from services.rules.core.rules._alerting import emit, note_episode
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "HE-01"
RULE_VERSION: Final = 1
TITLE: Final = "New-onset overt hepatic encephalopathy"


#: Only a new West Haven point (`_he.new_points`): assessments and HE AEs (HE-03).
TRIGGERS: Final = on(kinds=("wh",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise HE-01 for a West Haven grade >= 2 with no overt grade in the lookback."""
    signals: list[SignalRaised] = []
    for point in _he.new_points(state, fact):
        if not _he.is_new_onset(state, point, config):
            continue
        state, fire = note_episode(
            state, fact, family=_he.FAMILY, at=point.at, level=int(point.value), config=config
        )
        if not fire:
            continue
        ae = _he.he_ae(state, fact)
        he = _he.HEFinding(point, _he.previous(state, point), ae)
        found = _he.finding(state, fact, he, rule=(RULE_ID, RULE_VERSION, TITLE), config=config)
        signals.append(emit(state, fact, found))
    return state, tuple(signals)
