"""Fair scheduling of a read-ahead window by lane (pure: no I/O, no clock of its own).

A consumer reads a bounded window of a stream ahead of processing and hands it to this
scheduler. Each message belongs to a *lane* (for the rules: one participant): messages of
one lane are handed out in stream order and never overtake each other; different lanes do
not wait for each other. Each group the scheduler hands out is small and fair:

- lanes holding an *urgent* message (one that can raise a U0/U1 alert) come first, each up
  to and including its first urgent message (at most `quantum` messages ahead of it per
  group, so a lane with a long history of its own cannot crowd out another lane's alert);
- then the other lanes in round-robin, `quantum` messages each (more when few lanes have
  work), until the group is full.

A *broadcast* (for the rules: a clock tick of one trial) belongs to every lane of its scope
in that lane's stream order. It is handed out inside each lane's group that passes its
position (`final=False`: the lane applies it to itself) and, once no earlier message of its
scope is pending, once more on its own (`final=True`: it applies to every lane that has not
seen it, and is then acknowledged). The handler keeps a per-lane position with its effects so
a broadcast is applied to a lane at most once.

A group that fails stays in the window and is offered again after a backoff; nothing is
dropped here. Entries are never reordered within a lane, even across retries.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

H = TypeVar("H")


@dataclass(frozen=True, slots=True)
class Lane:
    """Where one message goes in the schedule.

    `key`: messages with equal keys are handled in stream order (None: no order needed).
    `scope`: the group of lanes a key belongs to (a trial), or that a broadcast reaches.
    `broadcast`: a message for every lane of `scope` (key must be None).
    `urgent`: can raise an alert that must not wait behind other lanes' backlogs.
    """

    key: str | None = None
    scope: str | None = None
    broadcast: bool = False
    urgent: bool = False


@dataclass(slots=True)
class Entry(Generic[H]):
    """One message in the window; `handle` acknowledges it (None: not deliverable yet)."""

    seq: int
    lane: Lane
    handle: H | None
    attempts: int = 0
    retry_at: float = 0.0
    touched_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Step(Generic[H]):
    """One entry as handed out in a group.

    `lane` is the key the handler applies it to: the entry's own key, or, for a broadcast
    replayed into a lane, that lane's key (with `final=False`). A final broadcast has lane
    None and applies to every lane of its scope that has not seen it.
    """

    entry: Entry[H]
    lane: str | None
    final: bool


@dataclass
class _Scope:
    """Pending positions of one scope: ordinary messages (a min-heap) and broadcasts."""

    pending: list[int] = field(default_factory=list)  # heap, lazily cleaned
    broadcasts: list[int] = field(default_factory=list)  # heap of broadcast seqs


class LaneScheduler(Generic[H]):
    """The window and its fair schedule; the consumer shell does the I/O around it."""

    def __init__(self, *, max_group: int = 256, quantum: int = 32) -> None:
        if max_group < 1 or quantum < 1:
            raise ValueError("max_group and quantum must be >= 1")
        self.max_group = max_group
        self.quantum = quantum
        self._entries: dict[int, Entry[H]] = {}
        self._lanes: dict[str, deque[int]] = {}
        self._urgent: dict[str, deque[int]] = {}  # urgent seqs per lane, ascending
        self._round: OrderedDict[str, None] = OrderedDict()  # lanes with work, rotation order
        self._loose: list[int] = []  # heap: entries without a key and no broadcast
        self._scopes: dict[str, _Scope] = {}
        #: Highest seq handed out per lane: a broadcast is replayed into a lane only past it.
        self._passed: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, seq: int) -> bool:
        return seq in self._entries

    def entry(self, seq: int) -> Entry[H] | None:
        """The pending entry at `seq`, if any."""
        return self._entries.get(seq)

    def lowest(self) -> int | None:
        """The lowest pending stream position (None: nothing pending)."""
        return min(self._entries) if self._entries else None

    def add(self, seq: int, lane: Lane, handle: H | None, *, now: float = 0.0) -> bool:
        """Put a message in the window; a repeat of a pending seq only refreshes its handle.

        Returns True when the entry is new.
        """
        known = self._entries.get(seq)
        if known is not None:
            if handle is not None:
                known.handle = handle  # the newest delivery is the one the server tracks
                known.touched_at = now
            return False
        self._entries[seq] = Entry(seq, lane, handle, touched_at=now)
        if lane.broadcast and lane.scope is not None:
            heapq.heappush(self._scope(lane.scope).broadcasts, seq)
        elif lane.key is None:
            heapq.heappush(self._loose, seq)
        else:
            _insert(self._lanes.setdefault(lane.key, deque()), seq)
            if lane.urgent:
                _insert(self._urgent.setdefault(lane.key, deque()), seq)
            self._round.setdefault(lane.key, None)
            if lane.scope is not None:
                heapq.heappush(self._scope(lane.scope).pending, seq)
        return True

    def next_group(self, now: float) -> list[Step[H]]:
        """The next group to handle (empty: nothing is ready now)."""
        steps: list[Step[H]] = []
        taken: set[int] = set()
        budget = self.max_group
        for key in self._urgent_lanes(now):
            if budget <= 0:
                break
            budget -= self._take(key, steps, taken, now, limit=budget, to_urgent=True)
        ready = [key for key in self._round if self._ready(key, now)]
        # Few lanes with work share the group in bigger slices: fairness needs the round,
        # not small slices, and a bigger group commits more facts per transaction.
        quantum = max(self.quantum, self.max_group // max(1, len(ready)))
        for key in ready:
            if budget <= 0:
                break
            if self._ready(key, now):
                limit = min(quantum, budget)
                budget -= self._take(key, steps, taken, now, limit=limit, to_urgent=False)
                self._round.move_to_end(key)  # the next group starts with the next lane
        for seq in sorted(self._loose):
            entry = self._entries.get(seq)
            if entry is not None and entry.retry_at <= now:
                steps.append(Step(entry, None, final=True))
                taken.add(seq)
        steps.extend(self._ready_broadcasts(taken, now))
        return steps

    def complete(self, steps: Iterable[Step[H]]) -> list[Entry[H]]:
        """Forget the final entries of a handled group; return them for acknowledgement."""
        done: list[Entry[H]] = []
        for step in steps:
            entry = step.entry
            if step.lane is not None:
                self._passed[step.lane] = max(self._passed.get(step.lane, 0), entry.seq)
            if not step.final or self._entries.pop(entry.seq, None) is None:
                continue
            done.append(entry)
            key = entry.lane.key
            if entry.lane.broadcast or key is None:
                continue  # heaps are cleaned lazily
            lane = self._lanes[key]
            lane.remove(entry.seq)  # the head, in practice: lanes are handed out in order
            urgent = self._urgent.get(key)
            if urgent and entry.seq in urgent:
                urgent.remove(entry.seq)
                if not urgent:
                    del self._urgent[key]
            if not lane:
                del self._lanes[key]
                self._round.pop(key, None)
        self._clean()
        return done

    def failed(
        self, steps: Iterable[Step[H]], *, now: float, backoff: Callable[[int], float]
    ) -> float:
        """Offer a failed group again after `backoff(attempts)`; return that delay."""
        entries = [e for e in {s.entry.seq: s.entry for s in steps}.values() if e.seq in self]
        for entry in entries:
            entry.attempts += 1
        delay = backoff(max((e.attempts for e in entries), default=1))
        for entry in entries:
            entry.retry_at = now + delay
        return delay

    def stale(self, *, now: float, older_than: float) -> list[Entry[H]]:
        """Entries with a handle untouched for `older_than` seconds (marked touched now)."""
        found = [
            e
            for e in self._entries.values()
            if e.handle is not None and now - e.touched_at > older_than
        ]
        for entry in found:
            entry.touched_at = now
        return found

    def next_retry(self, now: float) -> float | None:
        """The earliest future time a held-back entry becomes ready (None: none is held)."""
        times = [e.retry_at for e in self._entries.values() if e.retry_at > now]
        return min(times) if times else None

    def handles(self) -> list[H]:
        """Every handle in the window (to give them back at shutdown)."""
        return [e.handle for e in self._entries.values() if e.handle is not None]

    # -- internals -------------------------------------------------------------------

    def _scope(self, name: str) -> _Scope:
        return self._scopes.setdefault(name, _Scope())

    def _ready(self, key: str, now: float) -> bool:
        lane = self._lanes.get(key)
        return bool(lane) and self._entries[lane[0]].retry_at <= now  # type: ignore[index]

    def _urgent_lanes(self, now: float) -> list[str]:
        ready = [key for key in self._urgent if self._ready(key, now)]
        return sorted(ready, key=lambda k: self._urgent[k][0])

    def _take(
        self,
        key: str,
        steps: list[Step[H]],
        taken: set[int],
        now: float,
        *,
        limit: int,
        to_urgent: bool,
    ) -> int:
        """Append up to `limit` of this lane's entries, in order; return how many.

        `to_urgent`: stop right after the lane's first urgent entry (the urgent pass takes a
        lane only as far as its alert; the round-robin pass may take more).
        """
        lane = self._lanes[key]
        first_urgent = self._urgent[key][0] if to_urgent else None
        passed = self._passed.get(key, 0)
        scope = self._entries[lane[0]].lane.scope
        count = 0
        for seq in lane:
            if seq in taken:  # taken by the urgent pass of this group
                passed = seq
                continue
            if count >= limit:
                break
            entry = self._entries[seq]
            if entry.retry_at > now:
                break  # never overtake an entry of this lane that is held back
            steps.extend(self._replayed_broadcasts(scope, key, passed, seq))
            steps.append(Step(entry, key, final=True))
            taken.add(seq)
            passed = seq
            count += 1
            if first_urgent is not None and seq >= first_urgent:
                break
        return count

    def _replayed_broadcasts(
        self, scope: str | None, key: str, after: int, before: int
    ) -> list[Step[H]]:
        if scope is None or scope not in self._scopes:
            return []
        seqs = sorted(s for s in self._scopes[scope].broadcasts if after < s < before)
        return [Step(self._entries[s], key, final=False) for s in seqs if s in self._entries]

    def _ready_broadcasts(self, taken: set[int], now: float) -> list[Step[H]]:
        """Broadcasts with nothing earlier of their scope pending outside this group.

        The group's lane entries come before these steps, so a lane entry taken in this group
        is handled before the broadcast that follows it in the log.
        """
        ready: list[Step[H]] = []
        for scope in self._scopes.values():
            if not scope.broadcasts:
                continue
            earliest = min(
                (s for s in scope.pending if s in self._entries and s not in taken), default=None
            )
            for seq in sorted(scope.broadcasts):
                entry = self._entries.get(seq)
                if entry is None:
                    continue
                if (earliest is not None and earliest < seq) or entry.retry_at > now:
                    break  # later broadcasts of the scope wait for this one
                ready.append(Step(entry, None, final=True))
                taken.add(seq)
        return ready

    def _clean(self) -> None:
        for name in list(self._scopes):
            scope = self._scopes[name]
            while scope.pending and scope.pending[0] not in self._entries:
                heapq.heappop(scope.pending)
            while scope.broadcasts and scope.broadcasts[0] not in self._entries:
                heapq.heappop(scope.broadcasts)
            if not scope.pending and not scope.broadcasts:
                del self._scopes[name]
        while self._loose and self._loose[0] not in self._entries:
            heapq.heappop(self._loose)


def _insert(lane: deque[int], seq: int) -> None:
    """Keep a lane sorted; deliveries arrive in order, so this is an append in practice."""
    if not lane or lane[-1] < seq:
        lane.append(seq)
        return
    if seq in lane:
        return
    items = sorted([*lane, seq])
    lane.clear()
    lane.extend(items)
