"""SAE-01 serious adverse event recorded (core layer, one rule).

Source: ICH E2A (definition of serious: death, life-threatening, inpatient hospitalisation or
prolongation, persistent or significant disability, congenital anomaly, important medical
event) and ICH E6(R2) 4.11.1 (the investigator reports every SAE to the sponsor immediately;
operationalised as 24 h from awareness, RULES.md §1 [DC]). Protocol-planned admissions for
UC-MSC infusion or plasma exchange are not SAEs by themselves [DC].

Pages once per case (`_cases`): on the report, or on the update that first makes it
serious. Follow-up information updates the case (ICH E2D): a later record or update of a
paged case pages no one again; when it tells something that matters and was not told yet
(death, a new seriousness criterion, a higher CTCAE grade) it raises an update on the case,
which names the case's first page (`thread_signal_id`) so notify threads the two emails.
An update is U1: the case paged once, and a death pages through SAE-03.
What was told is remembered in `raised` keys (undone with the signal on a retraction).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final
from uuid import UUID

from schemas import ClinicalFact, Role, SignalPayload, SignalRaised, Urgency
from services.rules.core.rules._cases import any_raised, case_key, case_records
from services.rules.core.rules._shared import (
    ae_values,
    day0,
    event_type,
    is_fatal,
    is_serious,
    qualifying_criteria,
    touched_ae,
)
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.signals import build_signal
from services.rules.core.state import AdverseEventState, ParticipantState

RULE_ID: Final = "SAE-01"
RULE_VERSION: Final = 1
SPONSOR_REPORT_WITHIN: Final = timedelta(hours=24)
DEADLINE_LABEL: Final = "sponsor report (24 h, ICH E6(R2) 4.11.1)"
Step = tuple[ParticipantState, tuple[SignalRaised, ...]]
_RECIPIENTS: Final = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)


@dataclass(frozen=True, slots=True)
class _Told:
    """What the case's SAE-01 signals have said so far."""

    grade: int
    criteria: frozenset[str]
    fatal: bool
    page: UUID | None


#: Acts only on the AE a report or update just set (`touched_ae`).
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(state: ParticipantState, fact: ClinicalFact) -> Step:
    """Page the first time a case qualifies as serious; then update it on news only."""
    ae = touched_ae(state, fact)
    if ae is None or not is_serious(ae):
        return state, ()
    case = case_key(ae)
    if not any_raised(state, RULE_ID, case, case_records(state, ae)):
        return _page(state, fact, ae, case)
    told = _told(state, case)
    if told is None:  # paged before what was told was remembered: remember it, say nothing
        return _remember(state, case, ae), ()
    news = _news(ae, told)
    if not news:
        return state, ()
    signal = build_signal(fact, _update_payload(state, fact, ae, told, news))
    return _remember(state, case, ae), (signal,)


def _page(state: ParticipantState, fact: ClinicalFact, ae: AdverseEventState, case: str) -> Step:
    criteria = ", ".join(qualifying_criteria(ae))
    payload = SignalPayload(
        rule_id=RULE_ID,
        rule_version=RULE_VERSION,
        category="sae",
        title="Serious adverse event",
        urgency=Urgency.U0,
        recipients=_RECIPIENTS,
        arm=state.arm,
        reason=(
            f"AE {ae.ae_ref} '{ae.term}' (CTCAE grade {ae.ctcae_grade}) meets ICH E2A "
            f"seriousness criteria: {criteria}; report to the sponsor within 24 h of awareness"
        ),
        evidence_event_ids=ae.event_ids,
        values={**ae_values(ae), **_case_value(ae), "trigger_event_type": event_type(fact)},
        reporting_deadline=day0(ae, fact) + SPONSOR_REPORT_WITHIN,
        deadline_label=DEADLINE_LABEL,
    )
    signal = build_signal(fact, payload)
    # The record's own key too, as before cases existed (a case-less AE's case key is it).
    paged = {
        f"{RULE_ID}|ae:{ae.ae_ref}",
        f"{RULE_ID}|{case}",
        f"{RULE_ID}|{case}|page:{signal.event_id}",
    }
    return _remember(state, case, ae, state.raised | paged), (signal,)


def _update_payload(
    state: ParticipantState,
    fact: ClinicalFact,
    ae: AdverseEventState,
    told: _Told,
    news: tuple[str, ...],
) -> SignalPayload:
    fatal = "fatal" in news
    return SignalPayload(
        rule_id=RULE_ID,
        rule_version=RULE_VERSION,
        category="sae",
        title="SAE follow-up: fatal" if fatal else "SAE follow-up: case worsened",
        # Read within the day, never a second page: a death is paged by SAE-03 (every route,
        # a fatal AE included), and the case's first page already called for the report.
        urgency=Urgency.U1,
        recipients=_RECIPIENTS,
        arm=state.arm,
        reason=(
            f"Follow-up of SAE {ae.ae_ref} (ICH E2D): {'; '.join(news)}; send the sponsor "
            "the follow-up information"
        ),
        evidence_event_ids=ae.event_ids,
        values={
            **ae_values(ae),
            **_case_value(ae),
            "case_update": ",".join(news),
            "thread_signal_id": None if told.page is None else str(told.page),
            "trigger_event_type": event_type(fact),
        },
    )


def _case_value(ae: AdverseEventState) -> dict[str, str]:
    return {} if ae.case_id is None else {"case_id": ae.case_id}


def _news(ae: AdverseEventState, told: _Told) -> tuple[str, ...]:
    """What the record says that matters and the case's signals have not said yet."""
    news: list[str] = []
    if is_fatal(ae) and not told.fatal:
        news.append("fatal")
    news.extend(f"new criterion {c}" for c in qualifying_criteria(ae) if c not in told.criteria)
    if ae.ctcae_grade > told.grade:
        news.append(f"CTCAE grade {told.grade} -> {ae.ctcae_grade}")
    return tuple(news)


def _told(state: ParticipantState, case: str) -> _Told | None:
    """What was told of the case, from its `told:` keys (None: none were kept)."""
    prefix = f"{RULE_ID}|{case}|"
    mine = [key[len(prefix) :] for key in state.raised if key.startswith(prefix)]
    grades = [int(k.rsplit(":", 1)[1]) for k in mine if k.startswith("told:grade:")]
    if not grades:
        return None
    pages = sorted(UUID(k.removeprefix("page:")) for k in mine if k.startswith("page:"))
    criteria = frozenset(k.removeprefix("told:crit:") for k in mine if k.startswith("told:crit:"))
    return _Told(max(grades), criteria, "told:fatal" in mine, pages[0] if pages else None)


def _remember(
    state: ParticipantState,
    case: str,
    ae: AdverseEventState,
    raised: frozenset[str] | None = None,
) -> ParticipantState:
    """Add what `ae` tells of the case to the told keys (a higher grade, criteria, death)."""
    prefix = f"{RULE_ID}|{case}|told:"
    keys = {
        f"{prefix}grade:{ae.ctcae_grade}",
        *(f"{prefix}crit:{c}" for c in qualifying_criteria(ae)),
    }
    if is_fatal(ae):
        keys.add(f"{prefix}fatal")
    base = state.raised if raised is None else raised
    return state if keys <= base else replace(state, raised=base | keys)
