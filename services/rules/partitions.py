"""One rules worker's partitions: each with its own DuckDB file, durable consumer and relay.

Composition code (beside main.py, not an adapter): a `PartitionUnit` wires one partition's
store, `LaneConsumer` and `OutboxRelay`; `Ownership` decides every few seconds which
partitions this worker should hold (kit.ownership) and starts or stops units to match.

Why a takeover neither loses nor double-applies a fact: a partition's positions, tracking
and outbox live in the partition's own file, which moves with it; the unit is started only
under the partition's lock and the lock is given back only after the unit stopped and
closed the file. The durable consumer belongs to the partition too, so the new owner
resumes at its ack floor, re-reads what the previous owner held unacknowledged (LaneConsumer
recovery), and skips what the file already tracks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from kit.jetstream import Delivery, LaneConsumer
from kit.ownership import FileLock, partition_lock, plan, worker_lock, workers_up
from schemas import Subjects
from schemas.subjects import rules_durable
from services.rules.adapters.metrics import MeteredStore, RulesMetrics
from services.rules.adapters.nats_routes import build_handler, lane_of
from services.rules.adapters.relay import OutboxRelay
from services.rules.config import Settings
from services.rules.core.config import TrialConfig
from services.rules.ports import ConfigIdentity

if TYPE_CHECKING:
    from nats.aio.subscription import Subscription
    from nats.js import JetStreamContext

    from services.rules.ports import RulesStore

log = structlog.get_logger("services.rules")
_STOP_TIMEOUT_S = 15.0


@dataclass
class PartitionUnit:
    """One partition's store, consumer and relay in this process."""

    partition: int
    settings: Settings
    store: RulesStore
    metrics: RulesMetrics
    config: TrialConfig
    identity: ConfigIdentity
    on_batch: Callable[[], None] = lambda: None
    consumer: LaneConsumer | None = None
    #: Answers audit snapshot requests for this partition (several partitions only).
    snapshot_sub: Subscription | None = None
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def durable(self) -> str:
        """The partition's durable consumer on the facts stream."""
        return rules_durable(self.partition, self.settings.partitions)

    @property
    def consuming(self) -> bool:
        """Whether the consumer task runs."""
        return bool(self.tasks) and not self.tasks[-1].done()

    async def start(self, js: JetStreamContext) -> None:
        """Open the file and start the relay (republishing leftovers) and the consumer."""
        subjects = Subjects(self.settings.namespace)
        await self.store.open()
        self.relay = OutboxRelay(self.store, js, stream=subjects.signals_stream, log=log)
        handler = build_handler(
            store=MeteredStore(self.store, self.metrics), consumer=self.durable_tracking,
            log=log, on_committed=self.relay.wake, config=self.config, identity=self.identity,
        )  # fmt: skip

        async def observed(deliveries: Sequence[Delivery]) -> None:
            self.on_batch()
            with self.metrics.group_seconds.time():
                await handler(deliveries)

        s = self.settings
        self.consumer = LaneConsumer(
            js, stream=subjects.facts_stream, durable=self.durable, handler=observed,
            keyer=lane_of, window=s.rules_window, max_group=s.rules_batch,
            quantum=s.rules_quantum, ack_wait=s.rules_ack_wait,
            filter_subject=None if s.partitions == 1 else subjects.partition_filter(
                self.partition, s.partitions),
        )  # fmt: skip
        name = f"rules-p{self.partition}"
        self.tasks = [
            asyncio.create_task(self.relay.run(), name=f"{name}-relay"),
            asyncio.create_task(self.consumer.run(), name=f"{name}-consumer"),
        ]

    @property
    def durable_tracking(self) -> str:
        """The consumer name tracked in the file: the historical one, whatever the layout.

        Tracking rows live in the partition's own file, so the name need not tell
        partitions apart; keeping one name keeps the audit's reading of them unchanged.
        """
        return rules_durable(0, 1)

    async def stop(self) -> None:
        """Finish the group in hand, flush the outbox, close the file."""
        if self.consumer is not None:
            self.consumer.stop()
        consumer_task = self.tasks[-1] if self.tasks else None
        await _finish(consumer_task)
        if self.relay is not None:
            self.relay.stop()
            await _finish(self.tasks[0])
            try:
                await self.relay.flush()
            except Exception as exc:  # rows stay in the outbox for the next owner
                log.warning(
                    "signal_flush_failed", partition=self.partition, error=type(exc).__name__
                )
        self.consumer = self.relay = None
        self.tasks = []
        await self.store.close()


async def _finish(task: asyncio.Task[None] | None) -> None:
    """Await a task that was asked to stop; log (never hide) how it ended."""
    if task is None:
        return
    try:
        await asyncio.wait_for(task, timeout=_STOP_TIMEOUT_S)
    except TimeoutError:
        log.warning("task_cancelled_at_stop", task=task.get_name())
    except Exception as exc:  # stopping anyway; the reason is logged
        log.error("task_failed", task=task.get_name(), error=type(exc).__name__)  # noqa: TRY400 - no traceback: it may quote data


UnitFactory = Callable[[int], PartitionUnit]


@dataclass
class Ownership:
    """Holds this worker's lock and keeps its set of partitions in line with the plan."""

    settings: Settings
    make_unit: UnitFactory
    start_unit: Callable[[PartitionUnit], Awaitable[None]]
    #: Called before a unit stops (the service stops answering for the partition).
    before_stop: Callable[[PartitionUnit], Awaitable[None]] | None = None
    units: dict[int, PartitionUnit] = field(default_factory=dict)
    _locks: dict[int, FileLock] = field(default_factory=dict)
    _worker_lock: FileLock | None = None
    _missing: dict[int, int] = field(default_factory=dict)
    _last_up: frozenset[int] = frozenset()

    async def acquire_worker(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a deadline is the point
        """Take this worker's own lock (a probe by another worker may hold it for a moment)."""
        directory = self.settings.owners_dir
        directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(worker_lock(directory, self.settings.rules_worker))
        deadline = asyncio.get_running_loop().time() + timeout
        while not lock.try_acquire():
            if asyncio.get_running_loop().time() > deadline:
                msg = f"rules worker {self.settings.rules_worker} is already running here"
                raise RuntimeError(msg)
            await asyncio.sleep(0.05)
        self._worker_lock = lock

    async def rebalance(self) -> None:
        """One look: who is up; hand back, then claim, what the plan says."""
        s = self.settings
        me = s.rules_worker
        up = workers_up(s.owners_dir, me=me)
        for worker in self._last_up | frozenset(self._missing):
            self._missing[worker] = 0 if worker in up else self._missing.get(worker, 0) + 1
        self._missing = {w: n for w, n in self._missing.items() if 0 < n < 2}
        self._last_up = up
        alive = up | frozenset(self._missing)
        for partition, unit in list(self.units.items()):
            if not unit.consuming:  # its consumer died (say, a server lost): start it anew
                await self._release(partition, reason="consumer_ended")
        todo = plan(worker=me, alive=alive, partitions=s.partitions, held=frozenset(self.units))
        for partition in todo.release:
            await self._release(partition, reason="assigned_elsewhere")
        for partition in todo.claim:
            await self._claim(partition)

    async def _claim(self, partition: int) -> None:
        lock = FileLock(
            partition_lock(self.settings.owners_dir, partition, self.settings.partitions)
        )
        if not lock.try_acquire():
            return  # its owner has not let go yet; the next look tries again
        unit = self.make_unit(partition)
        try:
            await self.start_unit(unit)
        except Exception as exc:
            log.error("partition_start_failed", partition=partition, error=type(exc).__name__)  # noqa: TRY400 - no traceback: it may quote data
            with contextlib.suppress(Exception):
                await unit.stop()
            lock.release()
            return
        self.units[partition], self._locks[partition] = unit, lock
        log.info("partition_claimed", partition=partition, worker=self.settings.rules_worker)

    async def _release(self, partition: int, *, reason: str) -> None:
        unit = self.units.pop(partition)
        try:
            if self.before_stop is not None:
                await self.before_stop(unit)
            await unit.stop()
        finally:
            # Only now, with the file closed, may another worker open it.
            self._locks.pop(partition).release()
        log.info("partition_released", partition=partition, reason=reason)

    async def run(self) -> None:
        """Look again every `rules_ownership_check_s` until cancelled."""
        while True:
            await asyncio.sleep(self.settings.rules_ownership_check_s)
            try:
                await self.rebalance()
            except Exception as exc:  # the partitions held keep running; look again
                log.warning("ownership_look_failed", error=type(exc).__name__)

    async def close(self) -> None:
        """Stop every unit (releasing its lock), then this worker's own lock."""
        for partition in list(self.units):
            await self._release(partition, reason="stopping")
        if self._worker_lock is not None:
            self._worker_lock.release()
            self._worker_lock = None
