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
from collections.abc import Callable, Sequence

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from kit.jetstream import BatchConsumer, Delivery, LaneConsumer
from kit.lanes import Lane

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


# -- LaneConsumer: the rules' fair consumer (per-participant order, no global order) --------


def _test_lane(data: bytes, subject: str) -> Lane:
    """Payloads here are `lane[:urgent]:n`; `tick` is a broadcast to scope T."""
    key, _, rest = data.decode().partition(":")
    if key == "tick":
        return Lane(scope="T", broadcast=True)
    return Lane(key=key, scope="T", urgent=rest.startswith("urgent"))


async def _lane_stream(nats_url: str, namespace: str) -> tuple[NatsClient, str]:
    nc = await nats.connect(nats_url)
    stream = f"{namespace}_LANES"
    await nc.jetstream().add_stream(StreamConfig(name=stream, subjects=[f"{namespace}.lanes.>"]))
    return nc, stream


async def _publish(nc: NatsClient, namespace: str, stream: str, payloads: list[str]) -> None:
    js = nc.jetstream()
    futures = [
        await js.publish_async(f"{namespace}.lanes.x", p.encode(), stream=stream) for p in payloads
    ]
    await asyncio.gather(*futures)


async def _run_until(consumer: LaneConsumer, done: Callable[[], bool], limit: float = 60) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        for _ in range(int(limit / 0.02)):
            if done() or task.done():
                break
            await asyncio.sleep(0.02)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_an_urgent_fact_is_handled_before_another_lanes_backlog(
    nats_url: str, namespace: str
) -> None:
    nc, stream = await _lane_stream(nats_url, namespace)
    try:
        backlog = [f"bulk{n % 100}:{n}" for n in range(5_000)]
        await _publish(nc, namespace, stream, [*backlog, "X:urgent:sae"])
        handled: list[str] = []

        async def handler(batch: Sequence[Delivery]) -> None:
            await asyncio.sleep(0.002 * len(batch))  # the rules' per-fact cost, roughly
            handled.extend(d.data.decode() for d in batch if d.final)

        consumer = LaneConsumer(
            nc.jetstream(), stream=stream, durable="fair", handler=handler, keyer=_test_lane,
            max_group=256, quantum=32,
        )  # fmt: skip
        await _run_until(consumer, lambda: len(handled) >= 5_001)

        # Bounded by the groups already in hand while the reader fills the window up to the
        # alert, not by the 5,000 facts of the backlog ahead of it in the stream.
        position = handled.index("X:urgent:sae")
        assert position <= 4 * 256, f"the alert waited for {position} facts of other lanes"
        assert sorted(handled) == sorted([*backlog, "X:urgent:sae"])  # each once
        for lane_no in range(100):  # every lane in its log order
            mine = [h for h in handled if h.startswith(f"bulk{lane_no}:")]
            assert mine == [b for b in backlog if b.startswith(f"bulk{lane_no}:")]
    finally:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
        await nc.close()


async def test_a_restarted_lane_consumer_handles_what_the_dead_one_held_at_once_in_order(
    nats_url: str, namespace: str
) -> None:
    """Kill -9 mid-group: the dead consumer's messages are read directly, not after ack_wait."""
    nc, stream = await _lane_stream(nats_url, namespace)
    durable, ack_wait = "lanes-dead", 3.0
    # Stream seq n holds payload "<lane>:n"; seq 5 is a tick for both lanes.
    payloads = ["tick:5" if n == 5 else f"{'BA'[n % 2]}:{n}" for n in range(1, 12)]
    try:
        await _publish(nc, namespace, stream, payloads)
        dead = await nats.connect(nats_url)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait,
            max_deliver=-1,
            max_ack_pending=1000,
        )
        sub = await dead.jetstream().pull_subscribe(
            "", durable=durable, stream=stream, config=config
        )
        taken = await sub.fetch(6, timeout=5)
        assert [m.data.decode() for m in taken] == payloads[:6]
        committed = {"B:2"}  # the dead one committed and acked seq 2 out of order, then died
        await taken[1].ack()
        await dead.close()

        # The handler's side, as the rules do it: tracking skips what was committed, and a
        # per-lane position keeps a tick from reaching a lane twice.
        applied: dict[str, list[str]] = {"A": [], "B": []}
        position = {"A": 0, "B": 0}
        early: list[str] = []

        async def handler(batch: Sequence[Delivery]) -> None:
            for d in batch:
                text = d.data.decode()
                if d.final and text in committed:
                    continue
                for lane in [d.lane] if d.lane else ["A", "B"]:
                    if position[lane] < d.stream_seq:
                        applied[lane].append(text)
                        position[lane] = d.stream_seq
                if d.final:
                    committed.add(text)
                    if d.num_delivered == 0:
                        early.append(text)

        consumer = LaneConsumer(
            nc.jetstream(), stream=stream, durable=durable, handler=handler, keyer=_test_lane,
            ack_wait=ack_wait,
        )  # fmt: skip
        await _run_until(consumer, lambda: len(committed) >= 11, limit=30)

        assert set(early) >= {"A:1", "A:3", "B:4", "tick:5", "B:6"}, "read directly"
        assert committed == set(payloads)
        for lane in "AB":
            mine = [p for p in payloads if p.startswith(lane) or p == "tick:5"]
            if lane == "B":
                mine.remove("B:2")  # applied by the process that died
            assert applied[lane] == mine, lane

        # The server redelivers what the dead one held when ack_wait expires: a consumer
        # running then acknowledges it without applying anything twice.
        again = LaneConsumer(
            nc.jetstream(), stream=stream, durable=durable, handler=handler, keyer=_test_lane,
            ack_wait=ack_wait,
        )  # fmt: skip
        before = {lane: list(seen) for lane, seen in applied.items()}
        await _run_until(again, lambda: False, limit=2 * ack_wait)
        assert applied == before
        assert await _settled(nc, stream, durable) == (0, 0)
    finally:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
        await nc.close()


async def _settled(nc: NatsClient, stream: str, durable: str) -> tuple[int, int]:
    """(ack pending, pending) once the server has processed the acks sent (it does so
    asynchronously: read right after the consumer stops, they may still be in flight)."""
    for _ in range(100):
        info = await nc.jetstream().consumer_info(stream, durable)
        found = (info.num_ack_pending or 0, info.num_pending or 0)
        if found == (0, 0):
            break
        await asyncio.sleep(0.05)
    return found


def _seq_of(payload: str) -> int:
    return int(payload.rsplit(":", 1)[1])


async def test_a_failing_group_is_retried_without_reordering_its_lane(
    nats_url: str, namespace: str
) -> None:
    nc, stream = await _lane_stream(nats_url, namespace)
    try:
        payloads = [f"{'AB'[n % 2]}:{n}" for n in range(1, 21)]
        await _publish(nc, namespace, stream, payloads)
        handled: list[str] = []
        failures = iter([True, True])

        async def handler(batch: Sequence[Delivery]) -> None:
            if next(failures, False):
                raise RuntimeError("injected: storage unavailable")
            handled.extend(d.data.decode() for d in batch if d.final)

        consumer = LaneConsumer(
            nc.jetstream(), stream=stream, durable="flaky", handler=handler, keyer=_test_lane,
            max_group=4, quantum=2,
        )  # fmt: skip
        await _run_until(consumer, lambda: len(handled) >= 20)

        assert sorted(handled, key=_seq_of) == payloads
        for key in "AB":
            mine = [h for h in handled if h.startswith(key)]
            assert mine == [p for p in payloads if p.startswith(key)]
        assert await _settled(nc, stream, "flaky") == (0, 0)
    finally:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
        await nc.close()
