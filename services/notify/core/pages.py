"""One page per person per event (pure core): a delivery decision, not a clinical one.

A fact can fire several U0 rules at once: the report that makes a bleed serious raises
SAE-01 and VB-01, both for the investigator and the safety officer. Each signal keeps its
clinical urgency; what notify decides is how a person hears about them. The first U0
signal of a fact pages each of its recipients (with an acknowledgement link, escalation
when nobody acknowledges); every further U0 signal of the same fact reaches someone
already paged for it as a *same-event* message: sent at once as a reply to that page
(In-Reply-To its Message-ID, after it in the send order), tagged SAME EVENT rather than U0,
with no acknowledgement link and no escalation of its own, so acknowledging the page covers
the event. A recipient the page did not reach still gets a page of its own.

Every notification stays one email with its own Message-ID, whether the two signals come
in one batch or two: what reaches the wire never depends on timing, and each audited "sent"
is an email that exists (the chaos harness and `audit reconcile` count them one by one).

"First" is deterministic: a page already recorded for the fact and address (an earlier
batch) wins; within a batch SAE-01 comes first, then rule id, then signal id. A page is
keyed by the causing fact's event id (the signal's `causation_id`) and the address, so
the store can answer "was this person paged for this fact?" across batches and restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from schemas import SignalRaised, SignalUpdated, Urgency
from services.notify.core.plan import NotificationPlan

AnySignal = SignalRaised | SignalUpdated
#: The rule that pages for a serious AE: it goes first among the pages of one fact.
FIRST_RULE = "SAE-01"


@dataclass(frozen=True, slots=True)
class PageRef:
    """A page already planned for one fact and one address: what a same-event message cites."""

    key: str
    notification_id: UUID
    signal_id: UUID
    message_id: str
    rule: str


def page_key(signal: AnySignal, address: str) -> str | None:
    """Key of a page: causing fact and address; None for what never pages as a new alert.

    Updates and retractions thread under their own signal already; a signal without a
    causing fact cannot share one with another.
    """
    if not isinstance(signal, SignalRaised) or signal.payload.urgency is not Urgency.U0:
        return None
    if signal.causation_id is None:
        return None
    return f"{signal.causation_id}|{address.lower()}"


def keys_of(batch: Sequence[tuple[AnySignal, Sequence[NotificationPlan]]]) -> tuple[str, ...]:
    """Every page key a batch could use, for one store look-up before the decision."""
    keys = (page_key(signal, plan.address) for signal, plans in batch for plan in plans)
    return tuple(sorted({key for key in keys if key is not None}))


def one_page_each(
    batch: Sequence[tuple[AnySignal, Sequence[NotificationPlan]]],
    earlier: Mapping[str, PageRef],
) -> list[tuple[NotificationPlan, ...]]:
    """The plans of each signal of the batch (same order), with repeat pages made same-event.

    `earlier` holds the pages the store already recorded for the batch's keys. A plan that
    is itself the recorded page (a redelivered signal) stays as it is. Plans that remain
    pages carry their `page_key`; within a signal they come first, so an alert's first
    notification is a page.
    """
    taken = dict(earlier)
    decided: dict[int, tuple[NotificationPlan, ...]] = {}
    for index in sorted(range(len(batch)), key=lambda i: _order(batch[i][0])):
        signal, plans = batch[index]
        pages: list[NotificationPlan] = []
        same_event: list[NotificationPlan] = []
        for plan in plans:
            key = page_key(signal, plan.address)
            page = None if key is None else taken.get(key)
            if key is None:
                pages.append(plan)
            elif page is None or page.notification_id == plan.notification_id:
                taken.setdefault(key, _ref(key, plan))
                pages.append(replace(plan, page_key=key))
            else:
                same_event.append(same_event_plan(plan, page))
        decided[index] = (*pages, *same_event)
    return [decided[index] for index in range(len(batch))]


def pages_anyone(plans: Sequence[NotificationPlan]) -> bool:
    """Whether any of a signal's plans is a page (not a same-event message)."""
    return any(not is_same_event(plan) for plan in plans)


def is_same_event(plan: NotificationPlan) -> bool:
    """A message delivered on another signal's page: no ack link, no escalation."""
    return "same_event_as" in plan.context


def same_event_plan(plan: NotificationPlan, page: PageRef) -> NotificationPlan:
    """Deliver `plan` on the thread of `page` (same person, same fact) without paging again."""
    tag_end = plan.subject.find("]")
    tag = plan.subject[1:tag_end].split(" ", 1)[-1] if tag_end > 0 else ""
    rest = plan.subject[tag_end + 1 :].lstrip()
    subject = f"[SAME EVENT {tag} - paged as {page.rule}] {rest}".replace("  ", " ")
    note = (
        f"Same event as the {page.rule} page you received: not a separate page. "
        "It needs no acknowledgement of its own; acknowledging that page covers this finding."
    )
    context = {
        **plan.context,
        "urgency_label": f"delivered on the {page.rule} page",
        "same_event_as": {"rule": page.rule, "signal_id": str(page.signal_id)},
        "notes": [*plan.context.get("notes", ()), note],
    }
    return replace(
        plan, subject=subject, references=page.message_id, context=context, page_key=None
    )


def _order(signal: AnySignal) -> tuple[bool, str, str]:
    rule = signal.payload.rule_id
    return (rule != FIRST_RULE, rule, str(signal.event_id))


def _ref(key: str, plan: NotificationPlan) -> PageRef:
    return page_ref(key, plan.notification_id, plan.signal_id, plan.message_id, plan.context)


def page_ref(
    key: str, notification_id: UUID, signal_id: UUID, message_id: str, context: Mapping[str, object]
) -> PageRef:
    """Rebuild a page's reference from its plan or outbox row (the rule from `context`)."""
    rule = str(context.get("rule", "")).split(" ", 1)[0]
    return PageRef(key, notification_id, signal_id, message_id, rule)
