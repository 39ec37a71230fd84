"""Use-cases around alerts (app layer): acknowledge one, escalate the unacknowledged.

`Acknowledger` checks a signed link, a bearer token's authority (core/authority.py), or takes
a named person from the CLI, and records the acknowledgement with its channel (`link`,
`http`, `console` or `cli`); a token's principal may assign the alert to a named person.
`Escalator` looks at open U0 alerts on every tick of the clock port and records the due
escalation level with its emails, then wakes the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from services.notify.core import audit
from services.notify.core.ack import AckClaims, verify_ack
from services.notify.core.authority import ack_refusal, audience_of
from services.notify.core.errors import AckForbiddenError, UnknownAlertError
from services.notify.core.escalation import due_level, escalated_fact, escalation_plans
from services.notify.core.routing import Routing
from services.notify.ports import Acknowledgement, AlertStore, Clock, Logger, OpenAlert


@dataclass(frozen=True, slots=True)
class Acknowledger:
    """Record acknowledgements from signed links and from named people."""

    store: AlertStore
    clock: Clock
    log: Logger
    key: bytes

    def check(self, token: str) -> AckClaims:
        """Verify a link's token without using it (the confirmation page)."""
        return verify_ack(token, key=self.key, now=self.clock.now())

    async def by_link(self, token: str, *, reason: str | None = None) -> Acknowledgement:
        """Acknowledge as the recipient the token was issued to; a link works once."""
        claims = verify_ack(token, key=self.key, now=self.clock.now())
        plan = await self.store.plan_of(claims.notification_id)
        if plan is None or plan.signal_id != claims.signal_id:
            msg = f"no notification {claims.notification_id} for signal {claims.signal_id}"
            raise UnknownAlertError(msg)
        by = f"{plan.role.value} {plan.address}"[:200]  # the contract caps `by` at 200
        why = reason or "acknowledged from the email link"
        return await self._record(claims.signal_id, by=by, reason=why, via="link")

    async def by_person(self, signal_id: UUID, *, by: str, reason: str) -> Acknowledgement:
        """Acknowledge on behalf of a named person (the `safetymon ack` command)."""
        return await self._record(signal_id, by=by, reason=reason, via="cli")

    async def by_token(  # noqa: PLR0913 - who, where from, why: keyword-only
        self,
        signal_id: UUID,
        *,
        role: str,
        site: str | None,
        actor: str,
        reason: str,
        assign_to: str | None = None,
        via: str = "http",
    ) -> Acknowledgement:
        """Acknowledge as a bearer token's principal, if the alert was meant for its role.

        With `assign_to`, the principal hands the alert to a named person: the record says
        who takes it and who assigned it; the escalation stops as for any acknowledgement.

        Raises:
            UnknownAlertError: no such alert, or another site's (the same answer).
            AckForbiddenError: the alert was not routed to the token's role.

        """
        audience = audience_of(await self.store.delivery_log(signal_id=signal_id))
        refusal = ack_refusal(role, site, audience)
        if refusal is not None:
            self.log.warning(
                "alert_ack_refused", signal_id=str(signal_id), role=role, refusal=refusal.kind
            )
            if refusal.kind == "hidden":
                raise UnknownAlertError.for_signal(signal_id)
            raise AckForbiddenError(refusal.reason)
        by = actor if assign_to is None else f"{assign_to} (assigned by {actor})"
        return await self._record(signal_id, by=by[:200], reason=reason, via=via)

    async def _record(self, signal_id: UUID, *, by: str, reason: str, via: str) -> Acknowledgement:
        ack = await self.store.acknowledge(
            signal_id, by=by, reason=reason, via=via, at=self.clock.now()
        )
        correlation = None if ack.correlation_id is None else str(ack.correlation_id)
        self.log.info(
            "alert_acknowledged", signal_id=str(signal_id), correlation_id=correlation, via=via
        )
        return ack


class Escalator:
    """Escalate unacknowledged U0 alerts level by level on a timer from the clock port."""

    def __init__(  # noqa: PLR0913 - the collaborators of one use-case, all keyword-only
        self,
        *,
        store: AlertStore,
        routing: Routing,
        clock: Clock,
        log: Logger,
        delay: timedelta,
        on_recorded: Callable[[], None] = lambda: None,
        tick_seconds: float = 5.0,
    ) -> None:
        self._store, self._routing, self._clock, self._log = store, routing, clock, log
        self._delay, self._on_recorded, self._tick = delay, on_recorded, tick_seconds
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Leave `run()` after the current tick."""
        self._stop.set()

    async def run(self) -> None:
        """Tick until stopped."""
        while not self._stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._tick)

    async def tick(self) -> int:
        """Record every escalation due now; return how many were recorded."""
        now, recorded = self._clock.now(), 0
        for alert in await self._store.open_alerts():
            level = due_level(alert.state, now=now, delay=self._delay)
            if level is not None and await self._escalate(alert, level):
                recorded += 1
        if recorded:
            self._on_recorded()
        return recorded

    async def _escalate(self, alert: OpenAlert, level: int) -> bool:
        now = self._clock.now()
        plans = escalation_plans(alert.first, level, self._routing, delay=self._delay)
        facts: tuple[audit.AuditFact, ...] = (
            escalated_fact(alert.first, level, now=now),
            *(audit.intended_fact(plan, now=now) for plan in plans),
        )
        done = await self._store.record_escalation(alert, level, plans, facts)
        if done:
            correlation = alert.first.correlation_id
            self._log.warning(
                "alert_escalated", signal_id=str(alert.state.signal_id), level=level,
                correlation_id=None if correlation is None else str(correlation),
                recipients=len(plans),
            )  # fmt: skip
        return done
