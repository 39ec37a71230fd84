"""Corrections re-evaluate the signals they touch; one that no longer holds is retracted.

Core layer; pure. RULES.md §0.2: "Amended results re-evaluate the rule; if no longer met,
send a 'retracted' notice at the same urgency." The engine remembers every signal it raised
as a `SignalRecord` (what the signal rests on, and which raised keys and episodes its rule
set). When a `FactCorrected` supersedes a fact some standing signal rests on:

- the rules are run once on the corrected projection with the memory of what was
  already signalled wiped (`raised`, `episodes`), which answers "would these rules fire on
  what we now know?" without emitting anything;
- a standing signal whose rule still fires there, at the same or a higher clinical urgency,
  holds: nothing is sent (no duplicate) and the correction joins its evidence, so a later
  correction of the correction finds it again;
- otherwise a `SignalUpdated` with status "retracted" goes to the same recipients at the
  same urgency, with a deterministic id (retracted signal + correcting event), and the
  signal's raised keys and episodes are undone so the rule can fire afresh (e.g. a major Hb
  drop corrected to a minor one retracts VB-02 and lets VB-03 fire).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Final
from uuid import UUID

from schemas import (
    ClinicalFact,
    FactCorrected,
    Role,
    SignalPayload,
    SignalRaised,
    SignalUpdated,
    Urgency,
)
from services.rules.core.config import TrialConfig, days
from services.rules.core.signals import ACTOR, SOURCE, derived_id
from services.rules.core.state import ParticipantState, SignalRecord

Run = Callable[[ParticipantState, ClinicalFact], tuple[ParticipantState, tuple[SignalRaised, ...]]]
#: Urgency rank, U3 (DSMB listing) lowest.
RANK: Final = {"U3": 0, "U2": 1, "U1": 2, "U0": 3}
NOT_RECORDED: Final = frozenset({"SYS-01"})


def clinical_level(signal: SignalRaised) -> int:
    """Rank of the urgency the finding deserved, before a page was deferred to SAE-01."""
    clinical = signal.payload.values.get("clinical_urgency")
    return RANK[str(clinical) if clinical else signal.payload.urgency.value]


def remember(
    before: ParticipantState, after: ParticipantState, raised: Iterable[SignalRaised]
) -> ParticipantState:
    """Record the signals one rule just raised, with the keys and episodes it set for them."""
    keys = tuple(sorted(after.raised - before.raised))
    families = tuple(sorted({e.family for e in after.episodes if e not in before.episodes}))
    records = tuple(
        SignalRecord(
            signal_id=s.event_id,
            rule_id=s.payload.rule_id,
            rule_version=s.payload.rule_version,
            category=s.payload.category,
            title=s.payload.title,
            urgency=s.payload.urgency.value,
            recipients=tuple(r.value for r in s.payload.recipients),
            level=clinical_level(s),
            at=s.occurred_at,
            cause_id=s.causation_id or s.event_id,
            evidence=s.payload.evidence_event_ids,
            keys=keys,
            families=families,
        )
        for s in raised
        if s.payload.rule_id not in NOT_RECORDED
    )
    if not records:
        return after
    return replace(after, live_signals=(*after.live_signals, *records))


def forget_old(state: ParticipantState, config: TrialConfig) -> ParticipantState:
    """Drop records older than the retraction horizon (bounded state) [DC]."""
    if state.clock is None or not state.live_signals:
        return state
    horizon = state.clock - days(config.alerting.retraction_horizon_days)
    kept = tuple(r for r in state.live_signals if r.at >= horizon)
    return state if len(kept) == len(state.live_signals) else replace(state, live_signals=kept)


def retract(
    state: ParticipantState,
    fact: FactCorrected,
    *,
    run: Run,
    targets: frozenset[UUID],
    late: dict[str, str | float | int | bool | None],
) -> tuple[ParticipantState, tuple[SignalUpdated, ...]]:
    """Retract the standing signals resting on the superseded fact that no longer hold.

    `state` is the projection with the correction applied; `targets` the superseded fact
    and whatever stood for it before this correction (an earlier correction of it); `run`
    folds a state through all the planned rules (used once, on a copy without the signalling
    memory, and discarded).
    """
    touched = [r for r in state.live_signals if targets.intersection(r.evidence)]
    if not touched:
        return state, ()
    blank = replace(state, raised=frozenset(), episodes=(), live_signals=())
    _, would = run(blank, fact)
    still: dict[str, int] = {}
    for signal in would:
        rule = signal.payload.rule_id
        still[rule] = max(still.get(rule, -1), clinical_level(signal))
    kept: list[SignalRecord] = []
    retracted: list[SignalRecord] = []
    for record in state.live_signals:
        if record not in touched:
            kept.append(record)
        elif still.get(record.rule_id, -1) >= record.level:
            kept.append(replace(record, evidence=(*record.evidence, fact.event_id)))
        else:
            retracted.append(record)
    state = _undo(replace(state, live_signals=tuple(kept)), retracted)
    return state, tuple(_notice(state, fact, record, late) for record in retracted)


def _undo(state: ParticipantState, retracted: Sequence[SignalRecord]) -> ParticipantState:
    keys = {key for record in retracted for key in record.keys}
    fired = {(family, record.cause_id) for record in retracted for family in record.families}
    episodes = tuple(e for e in state.episodes if (e.family, e.fired_by) not in fired)
    return replace(state, raised=state.raised - keys, episodes=episodes)


def _notice(
    state: ParticipantState,
    fact: FactCorrected,
    record: SignalRecord,
    late: dict[str, str | float | int | bool | None],
) -> SignalUpdated:
    """The retraction notice: same rule, title, urgency and recipients as the signal."""
    target = fact.payload.supersedes_event_id
    kind = "retraction" if fact.payload.replacement is None else "correction"
    payload = SignalPayload(
        rule_id=record.rule_id,
        rule_version=record.rule_version,
        category=record.category,
        title=record.title,
        urgency=Urgency(record.urgency),
        recipients=tuple(Role(r) for r in record.recipients),
        arm=state.arm,
        reason=(
            f"Retracted: {record.rule_id} '{record.title}' (signal {record.signal_id}) no "
            f"longer holds after the {kind} {fact.event_id} of fact {target}; no action is "
            "needed for this signal"
        ),
        evidence_event_ids=(target, fact.event_id),
        values={
            "retracted_signal_id": str(record.signal_id),
            "superseded_event_id": str(target),
            "correcting_event_id": str(fact.event_id),
            "correction_kind": kind,
            **late,
        },
    )
    return SignalUpdated(
        event_id=derived_id("retracted", str(record.signal_id), str(fact.event_id)),
        trial_id=fact.trial_id,
        site_id=fact.site_id,
        participant_id=fact.participant_id,
        occurred_at=fact.occurred_at,
        recorded_at=fact.recorded_at,
        source=SOURCE,
        source_ref=f"{record.rule_id}:retracted:{fact.event_id}",
        actor=ACTOR,
        causation_id=fact.event_id,
        correlation_id=fact.correlation_id or fact.event_id,
        payload=payload,
        signal_id=record.signal_id,
        status="retracted",
    )
