"""Build signal facts deterministically from a rule's finding (core layer; no clock, no uuid4)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from uuid import UUID, uuid5

from schemas import ClinicalFact, Role, SignalPayload, SignalRaised, Urgency

#: Namespace of every id the rules service derives; never change it (ids are on the log).
NAMESPACE: Final = UUID("5b0c6e3a-9f1d-5e7a-8c42-1d7f3a9b6e10")
SOURCE: Final = "rules"
ACTOR: Final = "safetymon-rules"
SYSTEM_RULE_ID: Final = "SYS-01"
SYSTEM_RULE_VERSION: Final = 1


def signal_id(rule_id: str, participant_id: str, trigger_ids: Iterable[UUID]) -> UUID:
    """Idempotency key of RULES.md §0.2: uuid5 over (rule, participant, sorted triggers)."""
    triggers = ",".join(sorted(str(trigger) for trigger in trigger_ids))
    return uuid5(NAMESPACE, f"{rule_id}|{participant_id}|{triggers}")


def derived_id(kind: str, *parts: str) -> UUID:
    """Derive a deterministic id for something else the service records (e.g. a dead letter)."""
    return uuid5(NAMESPACE, "|".join((kind, *parts)))


def build_signal(
    cause: ClinicalFact, payload: SignalPayload, *, trigger_ids: tuple[UUID, ...] = ()
) -> SignalRaised:
    """Wrap a finding about `cause` in a SignalRaised whose every field derives from the input.

    Times are copied from the triggering fact, so a replay produces the same bytes.
    """
    triggers = trigger_ids or (cause.event_id,)
    return SignalRaised(
        event_id=signal_id(payload.rule_id, cause.participant_id, triggers),
        trial_id=cause.trial_id,
        site_id=cause.site_id,
        participant_id=cause.participant_id,
        occurred_at=cause.occurred_at,
        recorded_at=cause.recorded_at,
        source=SOURCE,
        source_ref=f"{payload.rule_id}:{cause.event_id}",
        actor=ACTOR,
        causation_id=cause.event_id,
        correlation_id=cause.correlation_id or cause.event_id,
        payload=payload,
    )


def system_signal(
    cause: ClinicalFact, *, stage: str, failed: tuple[str, ...], arm: str | None = None
) -> SignalRaised:
    """SYS-01: a fact could not be evaluated; tell the safety officer so nothing is lost silently.

    Args:
        cause: the fact (or the decodable envelope of a message) that failed.
        stage: "decode" or "evaluate".
        failed: rule ids (or error codes) that failed; codes only, never message text.
        arm: the participant's arm when known.

    """
    what = ", ".join(failed) or "unknown"
    payload = SignalPayload(
        rule_id=SYSTEM_RULE_ID,
        rule_version=SYSTEM_RULE_VERSION,
        category="system",
        title="Fact could not be evaluated",
        urgency=Urgency.U0,
        recipients=(Role.SAFETY_OFFICER,),
        arm=arm,
        reason=(
            f"a fact could not be evaluated ({stage} failed: {what}); it was dead-lettered "
            "for review and safety rules may not have run on it"
        ),
        evidence_event_ids=(cause.event_id,),
        values={"stage": stage, "failed": what, "event_id": str(cause.event_id)},
    )
    return build_signal(cause, payload)
