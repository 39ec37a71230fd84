"""JetStream edge (adapters layer): decode signal deliveries and hand them to the intake.

An undecodable delivery is dead-lettered in the same transaction as the rest of its batch
and logged at error level; it never fails the batch. Any other failure propagates, so the
BatchConsumer naks the whole batch and JetStream redelivers it with backoff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pydantic import ValidationError

from kit.jetstream import BatchHandler, Delivery
from schemas import SIGNAL_ADAPTER, ReportIssued, SignalRaised, SignalUpdated
from services.notify.ports import DeadLetter, Logger

Intake = Callable[[Sequence[SignalRaised | SignalUpdated], Sequence[DeadLetter]], Awaitable[object]]
ReportIntake = Callable[[Sequence[ReportIssued], Sequence[DeadLetter]], Awaitable[object]]
_ERROR_LIMIT = 1000
T = TypeVar("T")


def describe_invalid(exc: ValidationError) -> str:
    """Where and why a delivery is not a signal, without echoing its (possibly PHI) input."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '<message>'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )
    return problems[:_ERROR_LIMIT]


def build_signal_handler(intake: Intake, *, log: Logger) -> BatchHandler:
    """Build a BatchConsumer handler that decodes signals and records them via `intake`."""
    return _decoding_handler(SIGNAL_ADAPTER.validate_json, intake, log=log, kind="signal")


def build_report_handler(intake: ReportIntake, *, log: Logger) -> BatchHandler:
    """Build a BatchConsumer handler that decodes `ReportIssued` facts for the report intake.

    Same contract as the signal handler: poison is dead-lettered with its batch, anything
    else raises so the whole batch is nak'd and redelivered (never terminated).
    """
    return _decoding_handler(ReportIssued.model_validate_json, intake, log=log, kind="report")


def _decoding_handler(
    decode: Callable[[bytes], T],
    intake: Callable[[Sequence[T], Sequence[DeadLetter]], Awaitable[object]],
    *,
    log: Logger,
    kind: str,
) -> BatchHandler:
    """Decode each delivery with `decode`; dead-letter the undecodable ones with the batch."""

    async def handle(deliveries: Sequence[Delivery]) -> None:
        decoded: list[T] = []
        dead: list[DeadLetter] = []
        for delivery in deliveries:
            try:
                decoded.append(decode(delivery.data))
            except ValidationError as exc:
                error = describe_invalid(exc)
                dead.append(
                    DeadLetter(
                        delivery.stream_seq, delivery.subject, delivery.num_delivered,
                        error, delivery.data,
                    )
                )  # fmt: skip
        await intake(decoded, dead)
        for letter in dead:
            log.error(
                f"{kind}_dead_lettered",
                stream_seq=letter.stream_seq,
                subject=letter.subject,
                error=letter.error,
            )

    return handle
