"""SAE-05 serious clinical signal without an SAE report within 24 h (core layer, one rule).

Source: RULES.md §1 SAE-05 [DC] (ICH E6(R2) 4.11.1, 24 h operationalisation): a U0 signal
of a clinical rule that suggests an SAE (VB-01/02, HE with West Haven ≥ 3, INF-03/04/05, AKI
stage 3, PE-01 ionised calcium < 0.9, LAB-G4) with no SAE-01 for the participant within
24 h → U1 to investigator and safety officer.

Rules are pure and time arrives only with facts, so the engine `track`s those U0 signals
and SAE-01 signals in the participant's episodes, and SAE-05 is decided when a later fact
of the same participant arrives whose clinical or recording time is ≥ 24 h after the U0
signal was raised (its cause's recording time) with no SAE-01 within 24 h of it (clinical
or recording time). Limitation: without a clock-tick fact, a participant with no later
facts is not reminded; pending signals older than the episode retention (quiet period +
late-data allowance) are forgotten. One SAE-05 per due fact, naming every overdue signal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Final
from uuid import UUID

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._alerting import INV_SO, Finding, emit, late_values
from services.rules.core.state import Episode, ParticipantState

RULE_ID: Final = "SAE-05"
RULE_VERSION: Final = 1
#: Clinical rules whose U0 signals suggest an SAE (HE and PE-01 are U0 only at WH ≥ 3 /
#: iCa < 0.9, so the urgency check selects those findings).
SERIOUS_SIGNAL_RULES: Final = frozenset(
    {"VB-01", "VB-02", "HE-01", "HE-02", "INF-03", "INF-04", "INF-05", "AKI-03", "PE-01", "LAB-G4"}
)
PENDING: Final = "SAE-05|pending|"
REPORTED: Final = "SAE-05|sae-01"


def track(state: ParticipantState, signals: Iterable[SignalRaised]) -> ParticipantState:
    """Remember U0 serious-signal candidates and SAE-01 reports among `signals`."""
    noted = [
        Episode(family, s.occurred_at, s.occurred_at, 0, _cause(s), s.recorded_at)
        for s in signals
        if (family := _family(s)) is not None
    ]
    new = [e for e in dict.fromkeys(noted) if e not in state.episodes]
    if not new:
        return state
    ordered = sorted([*state.episodes, *new], key=lambda e: (e.family, e.first_at, str(e.fired_by)))
    return replace(state, episodes=tuple(ordered))


def _cause(signal: SignalRaised) -> UUID:
    """The fact the signal was raised on (rules always set it; the signal id otherwise)."""
    return signal.causation_id or signal.event_id


def _family(signal: SignalRaised) -> str | None:
    rule_id = signal.payload.rule_id
    if rule_id == "SAE-01":
        return REPORTED
    if rule_id in SERIOUS_SIGNAL_RULES and signal.payload.urgency is Urgency.U0:
        return PENDING + rule_id
    return None


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise SAE-05 for U0 signals now ≥ 24 h old with no SAE-01 within 24 h of them."""
    pending = [e for e in state.episodes if e.family.startswith(PENDING)]
    if not pending:
        return state, ()
    within = hours(config.sae.sae_within_hours)
    reports = [e for e in state.episodes if e.family == REPORTED]
    now = max(fact.occurred_at, fact.recorded_at)
    covered = [p for p in pending if any(_near(p, r, within) for r in reports)]
    due = [p for p in pending if p not in covered and now >= p.fired_at + within]
    if not covered and not due:
        return state, ()
    state = replace(state, episodes=tuple(e for e in state.episodes if e not in {*covered, *due}))
    if not due:
        return state, ()
    return state, (emit(state, fact, _finding(fact, due, config)),)


def _near(pending: Episode, report: Episode, within: timedelta) -> bool:
    """An SAE-01 within 24 h of the signal, by clinical or by recording time."""
    clinical = abs(report.first_at - pending.first_at)
    recorded = abs(report.fired_at - pending.fired_at)
    return min(clinical, recorded) <= within


def _finding(fact: ClinicalFact, due: list[Episode], config: TrialConfig) -> Finding:
    rules = sorted({e.family.removeprefix(PENDING) for e in due})
    causes = tuple(dict.fromkeys(e.fired_by for e in due))
    first = min(e.fired_at for e in due)
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "sae",
        "Serious clinical signal without an SAE report",
        Urgency.U1,
        INV_SO,
        f"U0 clinical signal(s) {', '.join(rules)} raised from {first.isoformat()} have no SAE "
        f"(SAE-01) recorded within {config.sae.sae_within_hours:g} h: assess seriousness and "
        "report to the sponsor if serious",
        causes,
        {
            "overdue_rules": ",".join(rules),
            "first_raised_at": first.isoformat(),
            **late_values(fact, config),
        },
        causes,
    )
