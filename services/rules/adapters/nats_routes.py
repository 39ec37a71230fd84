"""NATS edge of the rules service (adapters layer): lanes, decode deliveries, run the use-case.

`lane_of` tells the kit's LaneConsumer which participant a message belongs to (one lane per
participant, scoped by trial; a clock tick is a broadcast to its trial), and which messages
can raise an urgent alert. The consumer acks a group only after this handler returns and
offers it again with backoff when it raises, so a TransientError delays facts but never
drops them. A
message that cannot be decoded is permanent: it is dead-lettered (in the same transaction as
the rest of the batch), logged at error level without its body, and, when its envelope is
readable, announced to the safety officer with a SYS-01 signal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Final

import pydantic_core
from pydantic import ValidationError

from kit.jetstream import BatchHandler, Delivery
from kit.lanes import Lane
from schemas import LOG_FACT_ADAPTER, URGENT_EVENT_TYPES, ClinicalFact, ClockTicked
from services.rules import app
from services.rules.core.config import TrialConfig
from services.rules.core.engine import RuleSet
from services.rules.core.signals import derived_id, system_signal
from services.rules.ports import (
    ConfigIdentity,
    DeadLetter,
    EventLog,
    LaneTick,
    Rejected,
    StateStore,
)

_ENVELOPE_FIELDS: Final = frozenset(ClinicalFact.model_fields)
_MAX_ERROR_CODES: Final = 10
_SEP: Final = "\x1f"  # unit separator: cannot occur in the ids (schemas restrict them)


def lane_of(data: bytes, subject: str) -> Lane:
    """The scheduling lane of a fact: its participant, in its trial; a tick reaches the trial.

    Reads only three envelope fields (a full decode happens once, in the handler); a message
    too broken to name them gets no lane and is dead-lettered by the handler.
    """
    raw = pydantic_core.from_json(data)
    event_type, trial = raw.get("event_type"), raw.get("trial_id")
    if not isinstance(trial, str):
        return Lane()
    if event_type == "clock_ticked":
        return Lane(scope=trial, broadcast=True)
    participant = raw.get("participant_id")
    if not isinstance(participant, str):
        return Lane()
    return Lane(
        key=f"{trial}{_SEP}{participant}", scope=trial, urgent=event_type in URGENT_EVENT_TYPES
    )


def _key_of(lane: str) -> tuple[str, str]:
    trial, _, participant = lane.partition(_SEP)
    return trial, participant


def build_handler(
    *,
    store: StateStore,
    consumer: str,
    log: EventLog,
    on_committed: Callable[[], None] = lambda: None,
    config: TrialConfig | None = None,
    identity: ConfigIdentity | None = None,
) -> BatchHandler:
    """Return the BatchConsumer handler: decode, evaluate, commit, then wake the relay.

    `identity` names the file `config` was read from; app.handle_batch records it when it
    takes effect. `config` is compiled once here, not looked up per fact.
    """
    rules = None if config is None else RuleSet.of(config)

    async def handle(deliveries: Sequence[Delivery]) -> None:
        facts: list[app.Item] = []
        rejected: list[Rejected] = []
        for delivery in deliveries:
            decoded = decode(delivery, consumer=consumer)
            if isinstance(decoded, Rejected):
                if delivery.final:
                    rejected.append(decoded)
            elif not delivery.final and delivery.lane is not None:
                # A trial's tick replayed into one participant's order (see kit.lanes).
                if isinstance(decoded, ClockTicked):
                    facts.append(LaneTick(decoded, _key_of(delivery.lane)))
            else:
                facts.append(decoded)
        signals = await app.handle_batch(
            facts,
            consumer=consumer,
            store=store,
            rejected=rejected,
            log=log,
            config=rules,
            identity=identity,
        )
        if signals:
            on_committed()

    return handle


def decode(delivery: Delivery, *, consumer: str) -> ClinicalFact | ClockTicked | Rejected:
    """Decode one delivery, or describe why it is poison (codes only, never its content).

    Clock ticks (SAE-02's time source) travel on the facts stream beside arriving facts.
    """
    try:
        fact: ClinicalFact | ClockTicked = LOG_FACT_ADAPTER.validate_json(delivery.data)
    except ValidationError as exc:
        return _reject(delivery, exc, consumer=consumer)
    return fact


def _reject(delivery: Delivery, exc: ValidationError, *, consumer: str) -> Rejected:
    codes = [
        f"{'.'.join(str(part) for part in error['loc']) or '<message>'}:{error['type']}"
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    envelope = _envelope(delivery.data)
    tracking_id = derived_id("undecodable", consumer, delivery.subject, str(delivery.stream_seq))
    letter = DeadLetter(
        dead_letter_id=tracking_id,
        consumer=consumer,
        stage="decode",
        error=",".join(codes[:_MAX_ERROR_CODES]),
        event_id=None if envelope is None else envelope.event_id,
        trial_id=None if envelope is None else envelope.trial_id,
        participant_id=None if envelope is None else envelope.participant_id,
        subject=delivery.subject,
        stream_seq=delivery.stream_seq,
        body=delivery.data,
    )
    signal = (
        None
        if envelope is None
        else system_signal(envelope, stage="decode", failed=(f"decode:{codes[0]}",))
    )
    return Rejected(tracking_id=tracking_id, dead_letter=letter, signal=signal)


def _envelope(data: bytes) -> ClinicalFact | None:
    """Read just the envelope of an undecodable fact, when it is intact enough to name one."""
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    try:
        return ClinicalFact.model_validate({k: v for k, v in raw.items() if k in _ENVELOPE_FIELDS})
    except ValidationError:
        return None
