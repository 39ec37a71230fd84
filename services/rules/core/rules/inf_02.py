"""INF-02 SIRS (core layer, one rule).

Source: RULES.md §4.2-4.3 INF-02 (ACCP/SCCM 1992): >= 2 of temperature > 38.0 or < 36.0 °C,
heart rate > 90/min, respiratory rate > 20/min, WBC > 12 or < 4 x10^9/L, with every
contributing observation inside one 24 h window [DC]. The thresholds are strict: 38.0 °C
does not meet SIRS (it is CTCAE fever grade 1, INF-01). PaCO2 and band counts are not on
the wire and are not used. U1 to the investigator; INF-06 biomarkers annotate it. SIRS has
low specificity in cirrhosis (beta-blockers, hypersplenism). Episodes: family "INF-02".
Tagged with the UC-MSC or PE whose infection window holds the window's last observation
(INF-07). The WBC criterion reads blood WBC only (`clinical.labs`: an ascitic-fluid cell
count is not a SIRS criterion).
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._alerting import INV, Finding, emit, fresh, late_values, note_episode
from services.rules.core.rules._infection import (
    Criteria,
    Hit,
    around_in,
    best_window,
    biomarkers,
    hits,
)
from services.rules.core.rules._procedures import infection_phrase, infection_tag
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "INF-02"
RULE_VERSION: Final = 1
KINDS: Final = ("temp", "hr", "rr", "wbc")
MINIMUM: Final = 2


def criteria(config: TrialConfig) -> Criteria:
    """The SIRS criteria: the kind each reads and its test (strict inequalities)."""
    c = config.infection
    return {
        "temperature": (
            ("temp",),
            lambda o: (
                o.kind == "temp"
                and (o.value > c.sirs_temperature_high_c or o.value < c.sirs_temperature_low_c)
            ),
        ),
        "heart_rate": (("hr",), lambda o: o.kind == "hr" and o.value > c.sirs_heart_rate),
        "respiratory_rate": (
            ("rr",),
            lambda o: o.kind == "rr" and o.value > c.sirs_respiratory_rate,
        ),
        "wbc": (
            ("wbc",),
            lambda o: (
                o.kind == "wbc"
                and (o.value > c.sirs_wbc_high_e9_l or o.value < c.sirs_wbc_low_e9_l)
            ),
        ),
    }


#: Only a new SIRS observation (`fresh`).
TRIGGERS: Final = on(kinds=KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise INF-02 when a new observation completes >= 2 SIRS criteria in 24 h."""
    tests = criteria(config)
    new = hits(fresh(state, fact, *KINDS), tests)
    if not new:
        return state, ()
    span = hours(config.infection.sirs_window_hours)
    candidates = hits(around_in(state, KINDS, new, span), tests)
    window = max((best_window(candidates, hit, span) for hit in new), key=len)
    if len(window) < MINIMUM:
        return state, ()
    at = max(o.at for _, o in window)
    state, fire = note_episode(state, fact, family=RULE_ID, at=at, level=1, config=config)
    if not fire:
        return state, ()
    return state, (emit(state, fact, _finding(state, fact, window, config)),)


def _finding(
    state: ParticipantState, fact: ClinicalFact, window: list[Hit], config: TrialConfig
) -> Finding:
    names = [name for name, _ in window]
    at = max(o.at for _, o in window)
    markers, marker_ids = biomarkers(state, at, config)
    tag, procedure = infection_tag(state, at, config)
    shown = ", ".join(f"{name} {o.value:g}" for name, o in window)
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "infection",
        "SIRS criteria met",
        Urgency.U1,
        INV,
        f"{len(window)} SIRS criteria within 24 h: {shown}"
        + infection_phrase(procedure, at)
        + ("; procalcitonin/CRP: infection likely" if markers["infection_likely"] else ""),
        (
            *(o.event_id for _, o in window),
            *(() if procedure is None else (procedure.event_id,)),
            *marker_ids,
        ),
        {
            "sirs_criteria_count": len(window),
            "sirs_criteria": ",".join(names),
            **tag,
            **markers,
            **late_values(fact, config),
        },
        (fact.event_id,),
    )
