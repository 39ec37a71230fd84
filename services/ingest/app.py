"""Ingest use-cases: accept a batch of submissions and append it; relay the log to JetStream."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import UUID

import pydantic_core
import structlog

from schemas import URGENT_EVENT_TYPES, FactCorrected, canonical_bytes
from services.ingest.core.accept import Accepted, Rejection, accept, correction_errors
from services.ingest.core.chain import Entry, LogHead
from services.ingest.core.dedupe import (
    DedupeKey,
    Known,
    conflict_reason,
    dedupe_key,
    same_submission,
)
from services.ingest.core.errors import FieldError, OutOfSiteError, TransientError
from services.ingest.core.scope import out_of_site, participants
from services.ingest.core.ticks import tick_fact
from services.ingest.ports import Clock, EventLog, HeadAnchor, Publisher

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one submitted item."""

    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: UUID | None = None
    seq: int | None = None
    errors: tuple[FieldError, ...] = ()
    #: Rejected because its dedupe key names another record with different content.
    conflict: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON form returned by the HTTP API and the CLI."""
        body: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id is not None:
            body["event_id"] = str(self.event_id)
        if self.seq is not None:
            body["seq"] = self.seq
        if self.errors:
            body["errors"] = [{"field": e.field, "reason": e.reason} for e in self.errors]
        return body


class Ingest:
    """Validate, normalise, dedupe and append submissions; hand new entries to the relay."""

    def __init__(self, *, log: EventLog, relay: Relay, clock: Clock) -> None:
        self._log = log
        self._relay = relay
        self._clock = clock
        # One append at a time: dedupe-then-append must not interleave with another batch.
        self._lock = asyncio.Lock()

    async def submit(
        self, items: Sequence[object], *, actor: str, site: str | None = None
    ) -> list[Outcome]:
        """Process items in order; each is accepted, a duplicate, or rejected with reasons.

        Raises:
            OutOfSiteError: `site` is given (a per-site submitter) and a valid item lies
                outside it; the whole batch is refused and nothing is stored.

        """
        recorded_at = self._clock.now()
        results: list[Accepted | Rejection] = []
        for start in range(0, len(items), _ACCEPT_SLICE):
            if start:
                await asyncio.sleep(0)  # let /health and other requests through a large batch
            chunk = items[start : start + _ACCEPT_SLICE]
            results.extend(accept(item, recorded_at=recorded_at, actor=actor) for item in chunk)
        async with self._lock:
            if site is not None:
                await self._check_site(results, site=site, actor=actor)
            outcomes, wires = await self._decide(results)
            entries = await self._log.append(wires) if wires else []
        by_id = {entry.event_id: entry for entry in entries}
        final = [
            _with_seq(o, by_id[o.event_id]) if o.status == "accepted" and o.event_id else o
            for o in outcomes
        ]
        if entries:
            self._relay.offer(entries)
            # The event id is the correlation id of every alert the fact causes; the HTTP
            # edge binds `request_id` in the context, so these lines lead from a request to
            # its alerts (README "Tracing one alert").
            for entry in entries:
                log.debug(
                    "fact_accepted", correlation_id=str(entry.event_id),
                    event_type=entry.event_type, seq=entry.seq,
                )  # fmt: skip
            log.info("facts_appended", count=len(entries), last_seq=entries[-1].seq)
        rejected = sum(o.status == "rejected" for o in final)
        if rejected:
            log.info("facts_rejected", count=rejected, actor=actor)
        conflicts = [o.index for o in final if o.conflict]
        if conflicts:
            # Positions only: a record's key and content may describe a participant's event.
            log.warning(
                "facts_conflicting_rejected", count=len(conflicts), indexes=conflicts,
                actor=actor, site=site,
            )  # fmt: skip
        return final

    async def record_tick(self, trial_id: str, period_seconds: int) -> bool:
        """Append the trial's clock tick for the current period boundary (SAE-02).

        Returns False when that boundary's tick is on the log already (a duplicate).
        """
        fact, wire = tick_fact(trial_id, self._clock.now(), period_seconds=period_seconds)
        async with self._lock:
            known = await self._log.existing([dedupe_key(fact)])
            if known:
                return False
            entries = await self._log.append([wire])
        self._relay.offer(entries)
        return True

    async def _check_site(self, results: Sequence[Any], *, site: str, actor: str) -> None:
        facts = [(i, r.fact) for i, r in enumerate(results) if not isinstance(r, Rejection)]
        enrolled = await self._log.enrolment_sites(participants([fact for _, fact in facts]))
        problems = out_of_site(facts, site=site, enrolled=enrolled)
        if problems:
            log.warning("facts_refused_out_of_site", count=len(problems), actor=actor, site=site)
            raise OutOfSiteError(problems, site=site)

    async def _decide(self, results: Sequence[Any]) -> tuple[list[Outcome], list[dict[str, Any]]]:
        facts = [r.fact for r in results if not isinstance(r, Rejection)]
        known = await self._log.existing([dedupe_key(fact) for fact in facts])
        targets = await self._log.describe(
            [f.payload.supersedes_event_id for f in facts if isinstance(f, FactCorrected)]
        )
        outcomes: list[Outcome] = []
        wires: list[dict[str, Any]] = []
        for index, result in enumerate(results):
            outcome = _outcome(index, result, known, targets)
            if outcome.status == "accepted":
                # Later items of the batch compare against this one as against the log.
                known[dedupe_key(result.fact)] = Known(
                    result.fact.event_id, canonical_bytes(result.wire)
                )
                wires.append(result.wire)
            outcomes.append(outcome)
        return outcomes, wires


def _outcome(
    index: int,
    result: Accepted | Rejection,
    known: dict[DedupeKey, Known],
    targets: dict[UUID, tuple[str, str]],
) -> Outcome:
    """Accepted, a duplicate (same key, same content), or rejected (invalid or a conflict)."""
    if isinstance(result, Rejection):
        return Outcome(index, "rejected", errors=result.errors)
    fact = result.fact
    logged = known.get(dedupe_key(fact))
    if logged is not None:
        if same_submission(logged.content, result.wire):
            return Outcome(index, "duplicate", logged.event_id)
        reason = conflict_reason(index, fact, logged.event_id)
        conflict = (FieldError("source_ref", reason),)
        return Outcome(index, "rejected", errors=conflict, conflict=True)
    if isinstance(fact, FactCorrected):
        errors = correction_errors(fact, targets.get(fact.payload.supersedes_event_id))
        if errors:
            return Outcome(index, "rejected", fact.event_id, errors=errors)
    return Outcome(index, "accepted", fact.event_id)


#: Entries the relay confirms between two writes of its position (and whenever it is idle):
#: a restart republishes at most this many, which JetStream's deduplication drops.
_MARK_EVERY = 1_000

#: Submissions validated between two yields to the event loop (~10-20 ms of work).
_ACCEPT_SLICE = 100


def _with_seq(outcome: Outcome, entry: Entry) -> Outcome:
    return Outcome(outcome.index, outcome.status, outcome.event_id, entry.seq)


class Relay:
    """Publish the log to JetStream and record how far JetStream has confirmed.

    New entries arrive in memory for low latency; anything not in memory (a restart, a
    backlog past `memory_cap`) is read back from the log, so an appended entry is always
    published eventually, even if the process dies between append and publish.

    The log is published in order, with one exception so that an alert never waits behind
    another participant's backlog: an urgent fact (`URGENT_EVENT_TYPES`) waiting behind a
    backlog is published first when no earlier unpublished entry is of its participant or is
    a clock tick of its trial. Each participant's facts, and their order relative to their
    trial's ticks, therefore reach the stream in log order, which is all the rules rely on.
    `position` stays the highest seq below which everything is confirmed; what went ahead is
    republished after a crash and dropped by JetStream's deduplication (or, past its window,
    skipped by the rules' tracking).
    """

    def __init__(
        self, *, log: EventLog, publisher: Publisher, chunk: int = 500, memory_cap: int = 50_000
    ) -> None:
        self._log = log
        self._publisher = publisher
        self._chunk = chunk
        self._memory_cap = memory_cap
        self._pending: deque[Entry] = deque()
        #: Seqs published ahead of the backlog (confirmed, above `position`).
        self._ahead: set[int] = set()
        #: Seqs of urgent entries waiting in `_pending` (the express scan runs only then).
        self._urgent: set[int] = set()
        #: (trial, participant) of pending entries, read once from their content, and the
        #: pending seqs of each participant and of each trial's ticks, in log order: whether
        #: an urgent entry may go ahead is then a look at two queue heads, not a scan.
        self._lanes: dict[int, tuple[str, str]] = {}
        self._by_key: dict[tuple[str, str], deque[int]] = {}
        self._ticks: dict[str, deque[int]] = {}
        self._held: dict[int, Entry] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._position = 0
        self._marked = 0
        self._running = False

    @property
    def position(self) -> int:
        """Highest seq confirmed by JetStream."""
        return self._position

    def offer(self, entries: Sequence[Entry]) -> None:
        """Hand over freshly appended entries (dropped here past the cap; read back later)."""
        if len(self._pending) + len(entries) <= self._memory_cap:
            self._pending.extend(entries)
            for entry in entries:
                self._hold(entry)
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Publish until stopped; retries with backoff while the broker is unavailable."""
        self._position = self._marked = await self._log.published_position()
        self._running = True
        self._wake.set()
        failures = 0
        while self._running:
            try:
                published = await self._cycle()
                failures = 0
            except Exception as exc:
                # An unexpected error is retried like a transient one but logged as an
                # error: a stalled relay means alerts stop flowing, so someone must look.
                failures += 1
                delay = min(10.0, 0.1 * 2**failures)
                level = log.warning if isinstance(exc, TransientError) else log.error
                level("relay_publish_retry", error=type(exc).__name__, delay_s=delay)
                await asyncio.sleep(delay)
                continue
            if not published:
                self._wake.clear()
                await self._mark()  # the position is exact whenever the relay is idle
                if self._wake.is_set():
                    continue  # entries were offered while the position was written
                self._idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=5.0)

    def stop(self) -> None:
        """Stop after the cycle in hand."""
        self._running = False
        self._wake.set()

    async def drained(self, timeout: float) -> None:  # noqa: ASYNC109 - a deadline is the point
        """Wait until everything offered so far is confirmed."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _cycle(self) -> int:
        await self._skip_ahead()
        while self._pending and self._pending[0].seq <= self._position:
            self._drop(self._pending.popleft())
        express = self._express()
        if express:
            await self._publisher.publish(express)
            self._ahead.update(e.seq for e in express)
            for entry in express:
                self._release(entry.seq)
            log.info("facts_published_ahead", count=len(express), first=express[0].seq)
            return len(express)
        batch = self._next_in_memory()
        if batch is None:  # not in memory, or a gap: read the log
            batch = await self._log.read_after(self._position, self._chunk)
        if not batch:
            return 0
        fresh = [e for e in batch if e.seq not in self._ahead]
        if fresh:
            await self._publisher.publish(fresh)
        self._position = batch[-1].seq
        await self._skip_ahead(mark=False)
        if self._position - self._marked >= _MARK_EVERY:
            await self._mark()
        return len(batch)

    async def _mark(self) -> None:
        """Record the confirmed position (a restart republishes what lies past it)."""
        if self._position != self._marked:
            await self._log.mark_published(self._position)
            self._marked = self._position

    def _next_in_memory(self) -> list[Entry] | None:
        """The next chunk from memory, contiguous from `position` (None: read the log)."""
        if not self._pending or self._pending[0].seq != self._position + 1:
            return None
        batch = [self._pending[i] for i in range(min(self._chunk, len(self._pending)))]
        if batch[-1].seq != batch[0].seq + len(batch) - 1:
            return None
        for _ in batch:
            self._drop(self._pending.popleft())
        return batch

    async def _skip_ahead(self, *, mark: bool = True) -> None:
        """Move `position` over entries that went ahead and are now contiguous with it."""
        moved = False
        while self._position + 1 in self._ahead:
            self._position += 1
            moved = True
        self._ahead = {seq for seq in self._ahead if seq > self._position}
        if moved and mark:
            await self._mark()

    def _hold(self, entry: Entry) -> None:
        key = self._lanes[entry.seq] = _lane(entry)
        self._held[entry.seq] = entry
        if entry.event_type == "clock_ticked":
            self._ticks.setdefault(key[0], deque()).append(entry.seq)
            return
        self._by_key.setdefault(key, deque()).append(entry.seq)
        if entry.event_type in URGENT_EVENT_TYPES:
            self._urgent.add(entry.seq)

    def _release(self, seq: int) -> None:
        """Forget a held entry's place in its queues (published, ahead or in order)."""
        key = self._lanes.pop(seq, None)
        self._held.pop(seq, None)
        self._urgent.discard(seq)
        if key is None:
            return
        _forget(self._by_key, key, seq)
        _forget(self._ticks, key[0], seq)

    def _drop(self, entry: Entry) -> None:
        self._release(entry.seq)

    def _express(self) -> list[Entry]:
        """Urgent entries behind the next chunk that may go first (see the class doc).

        Only while memory holds the whole backlog without gaps: an entry read back from the
        log later could be an earlier fact of the same participant.
        """
        pending = self._pending
        if not self._urgent or len(pending) <= self._chunk:
            return []
        if pending[0].seq != self._position + 1 or (
            pending[-1].seq - pending[0].seq + 1 != len(pending)
        ):
            return []
        boundary = pending[self._chunk].seq
        express: list[Entry] = []
        for seq in sorted(s for s in self._urgent if s >= boundary):
            trial, participant = self._lanes[seq]
            own = self._by_key.get((trial, participant))
            ticks = self._ticks.get(trial)
            if own and own[0] == seq and not (ticks and ticks[0] < seq):
                express.append(self._held[seq])
                if len(express) >= self._chunk:
                    break
        return express


K = TypeVar("K")


def _forget(queues: dict[K, deque[int]], name: K, seq: int) -> None:
    """Take `seq` out of its queue (the head, in practice); drop the queue when empty."""
    queue = queues.get(name)
    if not queue:
        return
    if queue[0] == seq:
        queue.popleft()
    elif seq in queue:
        queue.remove(seq)
    if not queue:
        del queues[name]


def _lane(entry: Entry) -> tuple[str, str]:
    """(trial, participant) of a log entry ("" for a tick's participant)."""
    raw = pydantic_core.from_json(entry.content)
    return str(raw.get("trial_id", "")), str(raw.get("participant_id") or "")


class HeadPublisher:
    """Publish the log's head outside its file whenever it moved, every `period` seconds.

    A failed publish is retried next period (logged): the anchor only narrows how late a
    rewrite is noticed, and must never hold up appends.
    """

    def __init__(
        self, *, log: EventLog, anchor: HeadAnchor, clock: Clock, period: float = 10.0
    ) -> None:
        self._log = log
        self._anchor = anchor
        self._clock = clock
        self._period = period
        self._published: LogHead | None = None
        self._stop = asyncio.Event()

    async def publish_now(self) -> None:
        """Publish the current head unless it is the one published last."""
        head = await self._log.head()
        if head.seq == 0 or head == self._published:
            return
        await self._anchor.publish(head, self._clock.now())
        self._published = head

    async def run(self) -> None:
        """Publish until stopped, and once more on the way out."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._period)
            try:
                await self.publish_now()
            except TransientError as exc:
                log.warning("log_head_publish_failed", error=str(exc))

    def stop(self) -> None:
        """Stop after one last publish."""
        self._stop.set()
