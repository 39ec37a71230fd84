"""Notify's metrics: what counts as alert latency, how failures are classed, escalations."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from prometheus_client import CollectorRegistry

from services.notify.adapters.metrics import NotifyMetrics
from services.notify.core.errors import DeliveryDeferredError, DeliveryRefusedError
from services.notify.core.plan import plan_notifications
from services.notify.ports import IntakeResult, OutgoingMail
from tests.unit.notify.factories import make_routing, make_signal


def _latency_count(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value(
        "safetymon_notify_alert_latency_seconds_count", {"urgency": "U0"}
    )


async def test_an_immediate_email_observes_recorded_at_to_250_digests_and_escalations_do_not():
    """Latency = 250 time - the signal's recorded_at; digest and escalation emails are left out."""
    registry = CollectorRegistry()
    metrics = NotifyMetrics(registry)
    signal = make_signal()

    async def intake(signals, dead_letters):
        return IntakeResult(new_signals=(signal.event_id,), duplicates=(), notifications=1)

    await metrics.observe_intake(intake)([signal], [])
    plan = plan_notifications(signal, make_routing())[0]
    at = signal.recorded_at + timedelta(seconds=0.2)
    metrics.delivered(OutgoingMail(plan, "t", "h"), at)
    metrics.delivered(OutgoingMail(replace(plan, digest_key="d"), "t", "h"), at)
    escalation = replace(plan, context={**plan.context, "escalation": {"level": 1}})
    metrics.delivered(OutgoingMail(escalation, "t", "h"), at)

    assert _latency_count(registry) == 1
    latency_sum = registry.get_sample_value(
        "safetymon_notify_alert_latency_seconds_sum", {"urgency": "U0"}
    )
    assert latency_sum == 0.2
    assert registry.get_sample_value("safetymon_notify_emails_sent_total", {"urgency": "U0"}) == 3
    received = {"urgency": "U0", "kind": "raised"}
    assert registry.get_sample_value("safetymon_notify_signals_received_total", received) == 1


def test_a_5xx_is_a_failure_a_4xx_a_retry_each_by_kind() -> None:
    """The sender gives up on permanent errors and retries transient ones; so do the counters."""
    registry = CollectorRegistry()
    metrics = NotifyMetrics(registry)
    mail = OutgoingMail(plan_notifications(make_signal(), make_routing())[0], "t", "h")

    metrics.refused(mail, DeliveryRefusedError("550"))
    metrics.refused(mail, DeliveryDeferredError("451"))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("safetymon_notify_emails_failed_total", urgency="U0") == 1
    assert value("safetymon_notify_emails_retried_total", urgency="U0") == 1
    assert value("safetymon_notify_smtp_failures_total", kind="refused") == 1
    assert value("safetymon_notify_smtp_failures_total", kind="deferred") == 1


def test_the_escalators_log_counts_each_escalation_by_level() -> None:
    """`alert_escalated` logged by the escalator counts once per level; other events do not."""
    registry = CollectorRegistry()
    metrics = NotifyMetrics(registry)
    logged: list[str] = []

    class _Log:
        def info(self, event: str, **kw: object) -> object:
            return logged.append(event)

        def warning(self, event: str, **kw: object) -> object:
            return logged.append(event)

        def error(self, event: str, **kw: object) -> object:
            return logged.append(event)

    log = metrics.escalation_log(_Log())
    log.warning("alert_escalated", level=1)
    log.warning("something_else", level=1)

    assert registry.get_sample_value("safetymon_notify_escalations_total", {"level": "1"}) == 1
    assert logged == ["alert_escalated", "something_else"]
