"""What every clinical rule does alike (core layer): episodes, lateness, emission, paging.

RULES.md §0.2: alerts carry rule id and version, arm, trigger ids and the idempotency key
`hash(rule_id, participant, trigger_ids)` (the signal id); they re-fire only on escalation
or after a quiet period; windows use clinical time. A fact recorded more than
`late_after_hours` after it happened is flagged `late` with its delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from schemas import ClinicalFact, Role, SignalPayload, SignalRaised, Urgency
from services.rules.core._observing import contributed_kinds
from services.rules.core.config import TrialConfig, hours
from services.rules.core.signals import build_signal
from services.rules.core.state import AdverseEventState, Episode, Observation, ParticipantState

Value = str | float | int | bool | None
Step = tuple[ParticipantState, tuple[SignalRaised, ...]]
INV_SO: tuple[Role, ...] = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
INV: tuple[Role, ...] = (Role.INVESTIGATOR,)
RANK = {Urgency.U3: 0, Urgency.U2: 1, Urgency.U1: 2, Urgency.U0: 3}


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's conclusion about one participant, before it becomes a signal."""

    rule_id: str
    rule_version: int
    category: str
    title: str
    urgency: Urgency
    recipients: tuple[Role, ...]
    reason: str
    evidence: tuple[UUID, ...]
    values: Mapping[str, Value] = field(default_factory=dict)
    trigger_ids: tuple[UUID, ...] = ()


def emit(state: ParticipantState, fact: ClinicalFact, finding: Finding) -> SignalRaised:
    """Build the signal: arm from the state, site from the fact, triggers in the signal id."""
    payload = SignalPayload(
        rule_id=finding.rule_id,
        rule_version=finding.rule_version,
        category=finding.category,
        title=finding.title,
        urgency=finding.urgency,
        recipients=finding.recipients,
        arm=state.arm,
        reason=finding.reason[:1000],
        evidence_event_ids=tuple(dict.fromkeys(finding.evidence or (fact.event_id,))),
        values=dict(finding.values),
    )
    return build_signal(fact, payload, trigger_ids=finding.trigger_ids)


def fresh(state: ParticipantState, fact: ClinicalFact, *kinds: str) -> tuple[Observation, ...]:
    """Observations of these kinds that `fact` just added to the projection.

    They carry the fact's clinical time, except a correction's (which keeps the corrected
    specimen's time), so only a correction needs the full scan.
    """
    contributed = contributed_kinds(fact)
    if contributed is None:  # a correction, which may have added any kind
        return state.observed_in(fact.event_id, *kinds)
    if contributed.isdisjoint(kinds):
        return ()
    return state.observed_in(fact.event_id, *kinds, at=fact.occurred_at)


def late_values(fact: ClinicalFact, config: TrialConfig) -> dict[str, Value]:
    """`late` (and the delay in hours) when the fact was recorded long after it happened."""
    delay = fact.recorded_at - fact.occurred_at
    if delay <= hours(config.alerting.late_after_hours):
        return {"late": False}
    return {"late": True, "delay_hours": round(delay.total_seconds() / 3600, 2)}


def note_episode(
    state: ParticipantState,
    fact: ClinicalFact,
    *,
    family: str,
    at: datetime,
    level: int,
    config: TrialConfig,
) -> tuple[ParticipantState, bool]:
    """Record a finding in its family's episode; tell whether it is new or an escalation."""
    quiet = hours(config.alerting.refire_quiet_hours)
    others = [e for e in state.episodes if e.family != family]
    mine = [e for e in state.episodes if e.family == family]
    match = next((e for e in mine if e.first_at - quiet <= at <= e.last_at + quiet), None)
    fire = match is None or level > match.level
    if match is None:
        episode = Episode(family, at, at, level, fact.event_id, at)
    else:
        mine.remove(match)
        episode = replace(
            match,
            first_at=min(match.first_at, at),
            last_at=max(match.last_at, at),
            level=max(match.level, level),
            fired_by=fact.event_id if fire else match.fired_by,
            fired_at=at if fire else match.fired_at,
        )
    ordered = sorted(
        [*others, *mine, episode], key=lambda e: (e.family, e.first_at, str(e.fired_by))
    )
    return replace(state, episodes=tuple(ordered)), fire


def episodes_near(
    state: ParticipantState, at: datetime, *, prefixes: tuple[str, ...], within: float
) -> tuple[Episode, ...]:
    """Episodes of families starting with `prefixes` that overlap `at` ± `within` hours."""
    span = hours(within)
    return tuple(
        e
        for e in state.episodes
        if e.family.startswith(prefixes) and e.first_at - span <= at <= e.last_at + span
    )


def ae_key(rule_id: str, ae: AdverseEventState, urgency: Urgency | None = None) -> str:
    """Raised-key of a rule for one AE (and urgency, for rules that re-fire on escalation)."""
    return f"{rule_id}|ae:{ae.ae_ref}" + ("" if urgency is None else f"|{urgency.value}")


def escalates(
    state: ParticipantState, rule_id: str, ae: AdverseEventState, urgency: Urgency
) -> bool:
    """True when this AE has not yet fired `rule_id` at `urgency` or any higher urgency."""
    return not any(
        ae_key(rule_id, ae, level) in state.raised for level in RANK if RANK[level] >= RANK[urgency]
    )
