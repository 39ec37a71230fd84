"""JetStream plumbing every service shares: streams, confirmed pipelined publish, batch consumer."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import api
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from kit.lanes import Lane, LaneScheduler, Step

if TYPE_CHECKING:
    from nats.js import JetStreamContext

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to a batch handler, with what JetStream knows about it."""

    data: bytes
    subject: str
    stream_seq: int
    num_delivered: int
    #: The lane (e.g. participant) this delivery is applied in (LaneConsumer only).
    lane: str | None = None
    #: False for a broadcast replayed into `lane` only: it completes later, on its own.
    final: bool = True


#: NATS header naming the alert a message belongs to: the event id of the fact that caused
#: it (README "Tracing one alert"). A UUID only, never anything about a participant.
CORRELATION_HEADER = "Safetymon-Correlation-Id"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish with a deduplication id (and optional extra headers)."""

    subject: str
    data: bytes
    msg_id: str
    #: Sent with the message; `Nats-Msg-Id` is always `msg_id`, whatever this holds.
    headers: Mapping[str, str] | None = None


BatchHandler = Callable[[Sequence[Delivery]], Awaitable[None]]


def default_replicas() -> int:
    """Replicas of a new stream: $SAFETYMON_STREAM_REPLICAS, else 1 (a single server).

    Read from the environment here so that every service creating a stream (whichever
    starts first) makes it R3 on a cluster, without each threading the setting through.
    """
    value = os.environ.get("SAFETYMON_STREAM_REPLICAS", "1")
    if not value.isdigit() or not 1 <= int(value) <= _MAX_REPLICAS:
        msg = f"SAFETYMON_STREAM_REPLICAS must be 1..{_MAX_REPLICAS}, not {value!r}"
        raise ValueError(msg)
    return int(value)


_MAX_REPLICAS = 5


async def ensure_stream(
    js: JetStreamContext,
    *,
    name: str,
    subjects: str,
    duplicate_window: float,
    replicas: int | None = None,
) -> None:
    """Create the stream if it is missing; never change an existing one.

    Streams are the log's transport: deletes and purges are denied, and a second
    declaration with another config must not silently overwrite the first. `replicas`
    (None: `default_replicas()`) is 3 on a three-node cluster, so losing one server loses
    no acknowledged message (the servers also need `sync_interval: always`).
    """
    try:
        await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        config = StreamConfig(
            name=name,
            subjects=[subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=duplicate_window,
            deny_delete=True,
            deny_purge=True,
            num_replicas=replicas or default_replicas(),
        )
        with contextlib.suppress(nats.js.errors.BadRequestError):
            # Another service created it between our look and our add: theirs stands.
            await js.add_stream(config)


async def publish_confirmed(
    js: JetStreamContext, messages: Sequence[Outgoing], *, stream: str, wait: float = 10.0
) -> None:
    """Publish all messages pipelined and return once JetStream has stored every one.

    Raises on the first failure; callers mark nothing as published unless this returns,
    and a republish is harmless because of the Nats-Msg-Id deduplication.
    """
    futures = [
        await js.publish_async(
            message.subject,
            message.data,
            stream=stream,
            headers={**(message.headers or {}), "Nats-Msg-Id": message.msg_id},
        )
        for message in messages
    ]
    if futures:
        await asyncio.wait_for(asyncio.gather(*futures), wait)


#: How long a batch that skipped ahead waits before it is offered again (see `_in_order`).
_OUT_OF_ORDER_DELAY_S = 1.0


async def consumers_idle(js: JetStreamContext, checks: Sequence[tuple[str, str]]) -> bool:
    """Whether every (stream, durable) exists with nothing pending or unacknowledged."""
    for stream, durable in checks:
        try:
            info = await js.consumer_info(stream, durable)
        except nats.js.errors.NotFoundError:
            return False
        if info.num_pending or info.num_ack_pending:
            return False
    return True


def _backoff(num_delivered: int) -> float:
    return float(min(30.0, 0.25 * 2 ** min(num_delivered, 8)))


class BatchConsumer:
    """Durable pull consumer that hands ordered batches to a handler and acks after it returns.

    Acknowledgement happens only after the handler has committed its effects; if the
    handler raises, the whole batch is nak'd with backoff and redelivered (never
    terminated), so a failure delays messages but never drops them.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        handler: BatchHandler,
        max_batch: int = 200,  # must be >= 2: one long-polled plus the rest
        ack_wait: float = 10.0,  # a batch commits in milliseconds; after a crash, redeliver soon
    ) -> None:
        self._js = js
        self._stream = stream
        self._durable = durable
        self._handler = handler
        self._max_batch = max_batch
        self._ack_wait = ack_wait
        self._running = False
        #: Set once the durable consumer exists and the first fetch is about to be made.
        self.ready = asyncio.Event()
        #: Stream sequence the next handled message should have (None: not known yet).
        self._next_seq: int | None = None
        #: Since when batches have been held back waiting for an earlier message.
        self._holding_since: float | None = None
        #: The fetches of the pull subscription while `run()` holds it (`stop()` wakes them).
        self._poll: _Poll | None = None

    async def run(self) -> None:
        """Fetch and handle batches until `stop()` is called."""
        config = ConsumerConfig(
            durable_name=self._durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            max_deliver=-1,  # never give up: poison is dead-lettered by the handler, not here
            max_ack_pending=self._max_batch * 4,
        )
        self._running = True  # before the first await: a stop() during start-up must count
        sub = await self._js.pull_subscribe(
            subject="", durable=self._durable, stream=self._stream, config=config
        )
        poll = self._poll = _Poll(sub)
        if not self._running:
            poll.wake()  # stop() came while subscribing
        self.ready.set()
        try:
            # Everything at or below the ack floor is handled; the stream resumes after it.
            floor = (await sub.consumer_info()).ack_floor
            self._next_seq = (floor.stream_seq if floor else 0) + 1
            while self._running:
                messages = await poll.fetch_upto(self._max_batch)
                if messages and not self._running:
                    # Fetched as stop() woke the poll, not handled: give them back for the
                    # next consumer instead of starting a batch while shutting down.
                    await _nak_all(messages)
                    break
                if messages:
                    messages = await self._in_order(sub, messages)
                if messages:
                    await self._dispatch(messages)
        finally:
            self._poll = None
            await _release(sub)

    def stop(self) -> None:
        """Ask the loop to finish after the batch in hand; a waiting long poll ends now.

        A batch being handled is never interrupted: it commits and is acknowledged first.
        """
        self._running = False
        if self._poll is not None:
            self._poll.wake()

    async def _in_order(
        self, sub: JetStreamContext.PullSubscription, messages: list[Msg]
    ) -> list[Msg]:
        """The messages that continue the stream order; later ones go back for a while.

        After a crash the batch the dead process held stays unacknowledged until `ack_wait`
        expires, and a nak'd batch waits out its delay; meanwhile the server hands out later
        messages. Handling those first would break the order a handler relies on (rules fold
        a participant's facts in log order: the chaos run caught a missed signal this way).
        So a batch that skips ahead of the next expected stream sequence is nak'd with a
        short delay while earlier messages are still outstanding; a gap with nothing
        outstanding (deleted or filtered-out messages) is simply passed over. After three
        `ack_wait`s of holding, order yields to progress (logged as an error).
        """
        messages = sorted(messages, key=lambda msg: msg.metadata.sequence.stream)
        expected = self._next_seq or 0
        keep: list[Msg] = []
        for msg in messages:
            seq = msg.metadata.sequence.stream
            if expected and seq > expected:
                break
            keep.append(msg)
            expected = max(expected, seq + 1)
        held = messages[len(keep) :]
        if not held:
            self._holding_since = None
            return messages
        info = await sub.consumer_info()
        outstanding = (info.num_ack_pending or 0) - len(messages)
        now = asyncio.get_running_loop().time()
        self._holding_since = self._holding_since or now
        if outstanding <= 0 or now - self._holding_since > 3 * self._ack_wait:
            if outstanding > 0:
                log.error("batch_order_given_up", durable=self._durable, expected=self._next_seq)
            self._holding_since = None
            return messages
        log.info(
            "batch_held_for_order",
            durable=self._durable,
            expected=self._next_seq,
            first=held[0].metadata.sequence.stream,
            held=len(held),
            outstanding=outstanding,
        )
        for msg in held:
            await msg.nak(delay=_OUT_OF_ORDER_DELAY_S)
        return keep

    async def _dispatch(self, messages: list[Msg]) -> None:
        deliveries = [
            Delivery(
                data=msg.data,
                subject=msg.subject,
                stream_seq=msg.metadata.sequence.stream,
                num_delivered=msg.metadata.num_delivered,
            )
            for msg in messages
        ]
        try:
            await self._handler(deliveries)
        except Exception as exc:  # any failure: redeliver later, never drop (see class doc)
            delay = _backoff(max(d.num_delivered for d in deliveries))
            log.warning(
                "batch_redelivery_scheduled",
                durable=self._durable,
                size=len(messages),
                delay_s=delay,
                error=type(exc).__name__,
            )
            for msg in messages:
                await msg.nak(delay=delay)
            return
        for msg in messages:
            await msg.ack()
        last = max(msg.metadata.sequence.stream for msg in messages)
        self._next_seq = max(self._next_seq or 0, last + 1)


#: How long stop() lets a woken reader finish admitting what it fetched before cancelling it.
_READER_FINISH_S = 5.0


async def _finish_reader(reader: asyncio.Task[None]) -> None:
    # The reader was woken by stop(): it admits what its last fetch returned (so _release
    # naks it) and ends. Cancelling it instead could drop a fetched batch on the floor,
    # leaving it to the server's ack_wait; cancellation is only the fallback.
    done, _ = await asyncio.wait({reader}, timeout=_READER_FINISH_S)
    if not done:
        reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await reader


#: Status of the wake-up `_Poll.wake()` queues (client side only, never from a server).
_WAKE_STATUS = "499"
_WAKE_DESCRIPTION = "safetymon consumer stopping"


class _Poll:
    """The fetches of one pull subscription; `wake()` ends a waiting long poll now.

    The long poll is woken, never cancelled: nats-py hands a message it has taken from its
    queue back only to a fetch that returns, so a cancelled fetch could drop one that was
    delivered (it would come back only after ack_wait). Waking queues a status message
    behind whatever was delivered: the fetch returns a delivered message first, or else
    meets the status and ends with an APIError that only this class raises. The 408 the
    server itself sends would not do: nats-py keeps waiting after one until its timeout.
    """

    def __init__(self, sub: JetStreamContext.PullSubscription) -> None:
        self.sub = sub
        self._polling = False
        self._woken = False

    def wake(self) -> None:
        """End the long poll in progress (or skip the next one); the fetch returns []."""
        self._woken = True
        if self._polling:
            status = Msg(
                self.sub._sub._conn,  # nats-py offers no public way to wake a pending fetch
                headers={api.Header.STATUS: _WAKE_STATUS, "Description": _WAKE_DESCRIPTION},
            )
            self.sub._sub._pending_queue.put_nowait(status)

    async def fetch_upto(self, limit: int) -> list[Msg]:
        """A long poll for the first message, then what is already waiting, `limit` at most.

        A plain fetch(N) holds an early SAE until N arrive or the timeout passes, and a
        short fetch for "the rest" costs its whole timeout when there is no rest. Asking
        the consumer how many are pending costs one round trip (~0.3 ms) instead. Only the
        long poll is woken: the second fetch returns at once with messages in hand, which
        an error raised inside nats-py would lose.
        """
        sub = self.sub
        if self._woken:
            return []
        self._polling = True
        try:
            first = await sub.fetch(1, timeout=1.0)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        except nats.js.errors.APIError as exc:
            if exc.description == _WAKE_DESCRIPTION:
                return []
            raise
        finally:
            self._polling = False
        if self._woken:
            return list(first)  # stopping: no second fetch (our wake-up may still be queued)
        waiting = sub.pending_msgs
        if not waiting:
            info = await sub.consumer_info()
            waiting = info.num_pending or 0
        if waiting <= 0 or limit <= 1 or self._woken:
            return list(first)
        try:
            rest = await sub.fetch(min(waiting, limit - 1), timeout=1.0)
        except (nats.errors.TimeoutError, TimeoutError):
            rest = []
        return [*first, *rest]


async def _nak_all(messages: Sequence[Msg]) -> None:
    for msg in messages:
        with contextlib.suppress(Exception):  # the connection may be closing; ack_wait covers it
            await msg.nak()


async def _release(sub: JetStreamContext.PullSubscription) -> None:
    """Unsubscribe, then give back whatever reached the client and was not handled.

    The server is told first and answers a PING after it, so every message it sent before
    it dropped our interest (say, one for the pull request stop() woke us from) is in the
    local queue by then; only then is the subscription forgotten locally, since nats-py
    drops a message for a subscription it no longer knows, leaving it to ack_wait. Each
    buffered delivery is nak'd so another consumer instance gets it at once; status
    messages (an expired pull request, our own wake-up) are not deliveries.
    """
    inner = sub._sub  # nats-py's own unsubscribe forgets the subscription before the server does
    with contextlib.suppress(Exception):  # a closed connection: ack_wait covers what it held
        await inner._conn._send_unsubscribe(inner._id)
        await inner._conn.flush()
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
    queue = inner._pending_queue
    buffered: list[Msg] = []
    while not queue.empty():
        msg = queue.get_nowait()
        if not (msg.headers and msg.headers.get(api.Header.STATUS)):
            buffered.append(msg)
    await _nak_all(buffered)


def subject_matches(subject: str, pattern: str) -> bool:
    """Whether a subject matches a NATS filter (`*` one token, `>` the rest)."""
    tokens, wanted = subject.split("."), pattern.split(".")
    for index, want in enumerate(wanted):
        if want == ">":
            return len(tokens) > index
        if index >= len(tokens) or want not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


def headers_of(msg: Msg) -> Mapping[str, str]:
    """Headers of a message, empty when it has none."""
    return msg.headers or {}


Keyer = Callable[[bytes, str], Lane]


class LaneConsumer:
    """Durable pull consumer that reads a bounded window ahead and handles it fairly by lane.

    Messages of one lane (one participant) are handled in stream order; lanes never wait
    for each other (`kit.lanes`). The window is JetStream's `max_ack_pending`: the server
    delivers at most that many unacknowledged messages, so a backlog larger than the window
    is read as the window drains. Each group is acknowledged after the handler returned
    (acks may go out of stream order: explicit ack policy); a group whose handler raised
    stays in the window and is offered again with backoff, and messages held longer than
    a third of `ack_wait` are kept alive with in-progress acks, so nothing is redelivered
    behind the consumer's back while it runs.

    After a crash the messages the dead process held, between the ack floor and the last
    delivered position, are redelivered only when `ack_wait` expires. Waiting for them would
    hold every lane for that long; instead they are read from the stream directly at start
    and handled in their lanes at once (the handler skips what it committed already), and
    acknowledged when the server redelivers them.
    """

    def __init__(  # noqa: PLR0913 - the consumer's knobs, keyword-only
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        handler: BatchHandler,
        keyer: Keyer,
        window: int = 20_000,
        max_group: int = 256,
        quantum: int = 32,
        ack_wait: float = 30.0,
        filter_subject: str | None = None,
    ) -> None:
        self._js = js
        self._stream = stream
        self._durable = durable
        self._filter = filter_subject
        self._handler = handler
        self._keyer = keyer
        self._window = window
        self._ack_wait = ack_wait
        self._schedule: LaneScheduler[_Held] = LaneScheduler(max_group=max_group, quantum=quantum)
        self._running = False
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        #: Handled from a direct read before the server redelivered them: ack on arrival.
        self._handled_early: set[int] = set()
        #: Set once the durable consumer exists and reading is about to start.
        self.ready = asyncio.Event()
        #: The fetches of the pull subscription while `run()` holds it (`stop()` wakes them).
        self._poll: _Poll | None = None

    @property
    def pending(self) -> int:
        """Messages in the window, not yet handled."""
        return len(self._schedule)

    def stop(self) -> None:
        """Ask the loop to finish after the group in hand."""
        self._running = False
        self._wake.set()
        self._room.set()
        if self._poll is not None:
            self._poll.wake()

    async def run(self) -> None:
        """Read and handle until `stop()` is called."""
        self._running = True  # before the first await: a stop() during start-up must count
        sub = await self._subscribe()
        poll = self._poll = _Poll(sub)
        if not self._running:
            poll.wake()  # stop() came while subscribing
        self.ready.set()
        reader: asyncio.Task[None] | None = None
        try:
            await self._recover(sub)
            reader = asyncio.create_task(self._read(poll), name=f"{self._durable}-reader")
            while self._running:
                if reader.done():
                    reader.result()  # re-raise why reading stopped
                    break
                await self._handle_next()
        finally:
            self._poll = None
            if reader is not None:
                await _finish_reader(reader)
            await self._release(sub)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self._durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            max_deliver=-1,  # never give up: poison is dead-lettered by the handler, not here
            max_ack_pending=self._window,
            filter_subject=self._filter,  # one partition's subjects (None: the whole stream)
        )
        # Creates the durable, or updates the window and ack_wait of one an earlier version
        # made (both are editable; the server answers with the updated config).
        await self._js.add_consumer(self._stream, config)
        return await self._js.pull_subscribe(
            subject="", durable=self._durable, stream=self._stream, config=config
        )

    async def _recover(self, sub: JetStreamContext.PullSubscription) -> None:
        """Read what a previous process may have held (ack floor .. last delivered) directly."""
        info = await sub.consumer_info()
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        last = info.delivered.stream_seq if info.delivered else 0
        if last <= floor or not info.num_ack_pending:
            return
        now = _now()
        seqs = list(range(floor + 1, last + 1))
        for start in range(0, len(seqs), 256):
            chunk = seqs[start : start + 256]
            raws = await asyncio.gather(
                *(self._js.get_msg(self._stream, seq) for seq in chunk), return_exceptions=True
            )
            for seq, raw in zip(chunk, raws, strict=True):
                if isinstance(raw, nats.js.errors.NotFoundError):
                    continue
                if isinstance(raw, BaseException):
                    raise raw
                if self._filter and not subject_matches(raw.subject or "", self._filter):
                    continue  # another partition's fact between this consumer's positions
                held = _Held(raw.data or b"", raw.subject or "", None)
                self._schedule.add(seq, self._lane(held.data, held.subject), held, now=now)
        log.info(
            "consumer_recovered_window",
            durable=self._durable,
            ack_floor=floor,
            last_delivered=last,
            read=len(self._schedule),
        )

    def _lane(self, data: bytes, subject: str) -> Lane:
        try:
            return self._keyer(data, subject)
        except Exception as exc:  # an unreadable message still gets handled (dead-lettered)
            log.warning("lane_unreadable", durable=self._durable, error=type(exc).__name__)
            return Lane()

    async def _read(self, poll: _Poll) -> None:
        """Keep the window full; wake the handler loop when something arrives."""
        while self._running:
            room = self._window - len(self._schedule)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            # Large fetches: the handler holds the event loop while it folds a group, so the
            # reader gets few turns and must read far more per turn than a group folds.
            for msg in await poll.fetch_upto(min(room, 5_000)):
                await self._admit(msg)
            self._wake.set()

    async def _admit(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq in self._handled_early:
            self._handled_early.discard(seq)
            await msg.ack()
            return
        known = self._schedule.entry(seq)
        lane = known.lane if known is not None else self._lane(msg.data, msg.subject)
        self._schedule.add(seq, lane, _Held(msg.data, msg.subject, msg), now=_now())

    async def _handle_next(self) -> None:
        # Cleared before looking, so an arrival between the look and the wait still wakes us.
        self._wake.clear()
        now = _now()
        await self._keep_alive(now)
        steps = self._schedule.next_group(now)
        if not steps:
            retry = self._schedule.next_retry(now)
            wait = 1.0 if retry is None else min(1.0, max(0.01, retry - now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            return
        deliveries = [_delivery(step) for step in steps]
        try:
            await self._handler(deliveries)
        except Exception as exc:  # any failure: offer again later, never drop (see class doc)
            delay = self._schedule.failed(steps, now=now, backoff=_backoff)
            log.warning(
                "group_retry_scheduled",
                durable=self._durable,
                size=len(steps),
                delay_s=delay,
                error=type(exc).__name__,
            )
            return
        for entry in self._schedule.complete(steps):
            if entry.handle is None or entry.handle.msg is None:
                self._handled_early.add(entry.seq)
            else:
                await entry.handle.msg.ack()
        self._room.set()

    async def _keep_alive(self, now: float) -> None:
        for entry in self._schedule.stale(now=now, older_than=self._ack_wait / 3):
            if entry.handle is not None and entry.handle.msg is not None:
                with contextlib.suppress(Exception):
                    await entry.handle.msg.in_progress()

    async def _release(self, sub: JetStreamContext.PullSubscription) -> None:
        # Give back what was read ahead and not handled, so a successor gets it at once
        # instead of after ack_wait.
        await _nak_all([held.msg for held in self._schedule.handles() if held.msg is not None])
        await _release(sub)


def _now() -> float:
    return asyncio.get_running_loop().time()


@dataclass(slots=True)
class _Held:
    """A message in the window: its bytes and the delivery to acknowledge.

    `msg` is None for a message read directly from the stream at recovery: it is
    acknowledged when the server redelivers it.
    """

    data: bytes
    subject: str
    msg: Msg | None


def _delivery(step: Step[_Held]) -> Delivery:
    entry = step.entry
    held = entry.handle
    assert held is not None  # noqa: S101 - the consumer adds every entry with one
    return Delivery(
        data=held.data,
        subject=held.subject,
        stream_seq=entry.seq,
        num_delivered=0 if held.msg is None else held.msg.metadata.num_delivered,
        lane=step.lane,
        final=step.final,
    )
