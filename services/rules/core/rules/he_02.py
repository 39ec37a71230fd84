"""HE-02 worsening hepatic encephalopathy (core layer, one rule).

Source: RULES.md §2 HE-02 [DC; CLIF-C OF brain failure = WH 3-4]: a West Haven grade >= the
previous assessment + 1 within 72 h, or any WH >= 3 regardless of history. The rise must
reach an overt grade (>= 2): 0 -> 1 stays covert [DC, as RULES.md's test vector implies].
WH >= 3 -> U0, otherwise U1; investigator and safety officer. An assessment that is
new-onset overt HE is HE-01's (the more specific finding) and is not signalled again here.
AE route (HE-03) and annotations (HE-04/05) as HE-01; episodes shared with HE-01 (family
"HE", level = grade).
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised
from services.rules.core.config import TrialConfig
from services.rules.core.rules import _he
from services.rules.core.rules._alerting import emit, note_episode
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "HE-02"
RULE_VERSION: Final = 1
TITLE: Final = "Worsening hepatic encephalopathy"


#: Only a new West Haven point (`_he.new_points`): assessments and HE AEs (HE-03).
TRIGGERS: Final = on(kinds=("wh",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise HE-02 for a one-grade rise within 72 h or any grade >= 3 (not new onset)."""
    signals: list[SignalRaised] = []
    for point in _he.new_points(state, fact):
        prior = _he.previous(state, point)
        if _he.is_new_onset(state, point, config) or not _he.is_worsening(point, prior, config):
            continue
        state, fire = note_episode(
            state, fact, family=_he.FAMILY, at=point.at, level=int(point.value), config=config
        )
        if not fire:
            continue
        ae = _he.he_ae(state, fact)
        found = _he.finding(
            state,
            fact,
            _he.HEFinding(point, prior, ae),
            rule=(RULE_ID, RULE_VERSION, TITLE),
            config=config,
        )
        signals.append(emit(state, fact, found))
    return state, tuple(signals)
