"""Stopping the kit's JetStream consumers ends their long poll at once and loses nothing.

A consumer waiting in its long poll is woken by `stop()` instead of sitting out the poll,
and the pull request it leaves behind must not swallow a message: whatever is published
around the stop reaches the next consumer on the same durable without waiting for
`ack_wait` (set far beyond the test's patience here). A batch being handled when stop()
comes is never interrupted: it commits and is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import nats
import pytest
from nats.js import JetStreamContext

from kit.jetstream import BatchConsumer, BatchHandler, Delivery, LaneConsumer, ensure_stream
from kit.lanes import Lane

pytestmark = pytest.mark.integration

#: Far longer than any wait below: a message left to ack_wait would fail the test.
_ACK_WAIT_S = 120.0
_PATIENCE_S = 15.0


@pytest.fixture
async def js(nats_url: str, namespace: str) -> AsyncIterator[tuple[JetStreamContext, str]]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"{namespace}_STOP"
    await ensure_stream(js, name=stream, subjects=f"{namespace}.stop.>", duplicate_window=60)
    yield js, stream
    with contextlib.suppress(Exception):
        await js.delete_stream(stream)
    await nc.close()


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.arrived = asyncio.Event()

    async def __call__(self, batch: Sequence[Delivery]) -> None:
        self.seen.extend(d.data for d in batch)
        self.arrived.set()


def _batch(js: JetStreamContext, stream: str, handler: BatchHandler) -> BatchConsumer:
    return BatchConsumer(
        js, stream=stream, durable="stopper", handler=handler, ack_wait=_ACK_WAIT_S
    )


def _lanes(js: JetStreamContext, stream: str, handler: BatchHandler) -> LaneConsumer:
    return LaneConsumer(
        js, stream=stream, durable="stopper", handler=handler, ack_wait=_ACK_WAIT_S,
        keyer=lambda data, subject: Lane(),
    )  # fmt: skip


async def _start(consumer: BatchConsumer | LaneConsumer) -> asyncio.Task[None]:
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(consumer.ready.wait(), _PATIENCE_S)
    await asyncio.sleep(0.2)  # into the long poll
    return task


@pytest.mark.parametrize("make", [_batch, _lanes], ids=["batch", "lanes"])
async def test_stop_ends_the_waiting_poll_and_leaves_no_pull_request(js, make) -> None:
    js, stream = js
    consumer = make(js, stream, _Recorder())
    task = await _start(consumer)

    consumer.stop()
    await asyncio.wait_for(task, _PATIENCE_S)

    info = await js.consumer_info(stream, "stopper")
    assert task.exception() is None
    assert info.num_waiting == 0  # the woken poll's request went with the subscription
    assert info.num_ack_pending == 0


@pytest.mark.parametrize("make", [_batch, _lanes], ids=["batch", "lanes"])
@pytest.mark.parametrize("when", ["before_stop", "after_stop"])
async def test_a_message_published_around_stop_reaches_the_next_consumer(
    js, make, when: str, namespace: str
) -> None:
    js, stream = js
    first, second = _Recorder(), _Recorder()
    consumer = make(js, stream, first)
    task = await _start(consumer)

    if when == "before_stop":
        await js.publish(f"{namespace}.stop.x", b"m1", stream=stream)
        consumer.stop()
    else:
        consumer.stop()
        await js.publish(f"{namespace}.stop.x", b"m1", stream=stream)
    await asyncio.wait_for(task, _PATIENCE_S)
    successor = make(js, stream, second)
    following = asyncio.create_task(successor.run())
    try:
        if b"m1" not in first.seen:
            await asyncio.wait_for(second.arrived.wait(), _PATIENCE_S)
        # Acknowledged too (a LaneConsumer acks what it recovered once it is redelivered).
        settled = await _settled(js, stream)
    finally:
        successor.stop()
        await asyncio.wait_for(following, _PATIENCE_S)

    assert sorted(first.seen + second.seen) == [b"m1"]  # handled once, by one of them
    assert settled


async def _settled(js: JetStreamContext, stream: str) -> bool:
    # The server applies acks asynchronously: the last one may land just after the stop.
    deadline = asyncio.get_running_loop().time() + _PATIENCE_S
    while asyncio.get_running_loop().time() < deadline:
        info = await js.consumer_info(stream, "stopper")
        if not info.num_ack_pending and not info.num_pending:
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("make", [_batch, _lanes], ids=["batch", "lanes"])
async def test_stop_lets_the_handler_in_progress_finish_and_acknowledges_it(
    js, make, namespace: str
) -> None:
    js, stream = js
    entered, release = asyncio.Event(), asyncio.Event()
    committed: list[bytes] = []

    async def slow(batch: Sequence[Delivery]) -> None:
        entered.set()
        await release.wait()
        committed.extend(d.data for d in batch)

    consumer = make(js, stream, slow)
    task = await _start(consumer)
    await js.publish(f"{namespace}.stop.x", b"m1", stream=stream)
    await asyncio.wait_for(entered.wait(), _PATIENCE_S)

    consumer.stop()
    release.set()
    await asyncio.wait_for(task, _PATIENCE_S)

    assert committed == [b"m1"]
    assert await _settled(js, stream)  # acknowledged, not handed back
