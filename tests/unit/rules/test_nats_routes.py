"""The NATS edge handler (no server needed): decoding, poison messages, relay wake-up."""

from __future__ import annotations

import json

import structlog
from structlog.testing import capture_logs

from kit.jetstream import Delivery
from schemas import SeriousnessCriterion
from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.adapters.nats_routes import build_handler, decode
from services.rules.ports import Rejected

from .factories import ae_reported, enrolled, unique

CONSUMER = "rules-evaluator"
SUBJECT = "t.ingest.adverse_event_reported.v1"


def delivery(data: bytes, seq: int = 1) -> Delivery:
    return Delivery(data=data, subject=SUBJECT, stream_seq=seq, num_delivered=1)


def test_valid_fact_decodes() -> None:
    """A valid wire fact decodes to its typed model."""
    fact = ae_reported(unique("P"))

    assert decode(delivery(fact.model_dump_json().encode()), consumer=CONSUMER) == fact


def test_garbage_is_rejected_without_a_signal() -> None:
    """Bytes that are not JSON are dead-lettered; no SYS-01 can be built without an envelope."""
    rejected = decode(delivery(b"\xff not json"), consumer=CONSUMER)

    assert isinstance(rejected, Rejected)
    assert rejected.signal is None
    assert rejected.dead_letter.stage == "decode"
    assert rejected.dead_letter.body == b"\xff not json"


def test_bad_payload_with_intact_envelope_raises_sys01() -> None:
    """An invalid payload under a readable envelope is dead-lettered and announced by SYS-01."""
    fact = ae_reported(unique("P"), term="Sepsis")
    wire = json.loads(fact.model_dump_json())
    wire["payload"]["ctcae_grade"] = 9

    rejected = decode(delivery(json.dumps(wire).encode()), consumer=CONSUMER)

    assert isinstance(rejected, Rejected)
    assert rejected.signal is not None
    assert rejected.signal.payload.rule_id == "SYS-01"
    assert rejected.signal.payload.evidence_event_ids == (fact.event_id,)
    assert rejected.dead_letter.event_id == fact.event_id
    assert "Sepsis" not in rejected.dead_letter.error


def test_rejection_id_is_stable_across_redeliveries() -> None:
    """The same poison message redelivered maps to the same tracking id (dead-lettered once)."""
    first = decode(delivery(b"{}", seq=7), consumer=CONSUMER)
    again = decode(delivery(b"{}", seq=7), consumer=CONSUMER)

    assert isinstance(first, Rejected)
    assert isinstance(again, Rejected)
    assert first.tracking_id == again.tracking_id


async def test_poison_does_not_block_the_batch() -> None:
    """A poison message is dead-lettered, logged at error level without its body, rest goes on."""
    store = InMemoryRulesStore()
    woken: list[bool] = []
    handler = build_handler(
        store=store,
        consumer=CONSUMER,
        log=structlog.get_logger(),
        on_committed=lambda: woken.append(True),
    )
    pid = unique("P")
    facts = [enrolled(pid), ae_reported(pid, criteria=(SeriousnessCriterion.HOSPITALISATION,))]
    batch = [
        delivery(facts[0].model_dump_json().encode(), 1),
        delivery(b'{"secret": "PHI-LIKE-TEXT"}', 2),
        delivery(facts[1].model_dump_json().encode(), 3),
    ]

    with capture_logs() as logs:
        await handler(batch)
        await handler(batch)  # a redelivery changes nothing

    assert len(await store.unpublished(limit=10)) == 1
    assert len(await store.dead_letters()) == 1
    assert woken == [True]
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert [entry["event"] for entry in errors] == ["fact_dead_lettered"]
    assert "PHI-LIKE-TEXT" not in repr(logs)
