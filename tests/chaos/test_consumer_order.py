"""What the chaos run found in the JetStream consumer: after a crash, order must hold.

A process that dies holding a batch leaves it unacknowledged until `ack_wait` expires;
meanwhile the server offers later messages to the restarted consumer. Rules fold a
participant's facts in log order, so handling those first changed what the rules decided
(a LAB-SHIFT signal the replay raises was never raised; chaos seed 233748). Against a real
NATS server: a consumer that dies holding messages 1-5, then a BatchConsumer on the same
durable must hand 1-10 to its handler in stream order, each once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from kit.jetstream import BatchConsumer, Delivery

pytestmark = pytest.mark.integration

ACK_WAIT = 1.0
MAX_BATCH = 50


async def test_a_restarted_consumer_handles_the_dead_ones_batch_first(
    nats_url: str, namespace: str
) -> None:
    stream, durable = f"{namespace}_ORDER", "order-check"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{namespace}.order.>"]))
    try:
        for n in range(1, 11):
            await js.publish(f"{namespace}.order.x", str(n).encode(), stream=stream)
        # The process that dies: same durable and settings as BatchConsumer, takes 1-5 and
        # never acknowledges them.
        dead = await nats.connect(nats_url)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ACK_WAIT,
            max_deliver=-1,
            max_ack_pending=MAX_BATCH * 4,
        )
        sub = await dead.jetstream().pull_subscribe(
            "", durable=durable, stream=stream, config=config
        )
        taken = await sub.fetch(5, timeout=5)
        assert [m.metadata.sequence.stream for m in taken] == [1, 2, 3, 4, 5]
        await dead.close()

        handled: list[int] = []

        async def handler(batch: Sequence[Delivery]) -> None:
            handled.extend(d.stream_seq for d in batch)

        consumer = BatchConsumer(
            js, stream=stream, durable=durable, handler=handler,
            max_batch=MAX_BATCH, ack_wait=ACK_WAIT,
        )  # fmt: skip
        task = asyncio.create_task(consumer.run())
        try:
            for _ in range(200):
                if len(handled) >= 10:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(3 * ACK_WAIT)  # long enough for a stray redelivery
        finally:
            consumer.stop()
            await asyncio.wait_for(task, timeout=10)
        assert handled == list(range(1, 11))
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()
