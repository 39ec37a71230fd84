"""Per-participant projection the rules read (core layer): frozen values, nothing else.

Histories are bounded: `observations` and non-protocol `procedures` are pruned by clinical
time relative to the newest fact seen (`clock`), keeping each kind's longest rule window
plus the late-data allowance (see `projection.retention`); alert `episodes` likewise. AEs,
UC-MSC infusions and plasma exchanges are kept whole (few per participant by protocol), and
so is the last pre-randomisation observation of each kind (`baselines`, RULES.md §0.2).

The stored (JSON) form lives in `state_codec`, which builds on these types; this module
imports nothing of the core above it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import overload
from uuid import UUID

from services.rules.core import _trie


@dataclass(frozen=True, slots=True)
class Procedure:
    """A treatment as the rules need it: what, its start (and end), which fact said so."""

    treatment: str
    started_at: datetime
    event_id: UUID
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """One measured value in canonical SI units at a clinical time (lab, vital or WH grade).

    `kind` is the rules' name for it (e.g. "hb" g/L, "temp" °C, "wh" West Haven grade);
    `low`/`high` are the reporting laboratory's reference limits when it sent them. A blood
    culture's `organism` is the SNOMED CT code of what grew, and `commensal` says whether it
    is a common skin commensal (`clinical.organisms`), when the result names it.
    """

    kind: str
    at: datetime
    value: float
    event_id: UUID
    low: float | None = None
    high: float | None = None
    organism: str | None = None
    commensal: bool = False


@dataclass(frozen=True, slots=True)
class Episode:
    """An alert episode of one rule family (RULES.md §0.2: re-fire only on escalation).

    Findings within `refire_quiet_hours` of the episode join it; only a finding of a higher
    `level` than the episode's fires again. `fired_by`/`fired_at` name the last firing.
    """

    family: str
    first_at: datetime
    last_at: datetime
    level: int
    fired_by: UUID
    fired_at: datetime


@dataclass(frozen=True, slots=True)
class AdverseEventState:
    """Latest known values of one AE (by `ae_ref`) and every fact that reported them."""

    ae_ref: str
    term: str
    ctcae_grade: int
    seriousness_criteria: tuple[str, ...]
    planned_admission_for_procedure: bool
    relatedness_uc_msc: str
    expectedness: str
    outcome: str
    onset_at: datetime
    awareness_at: datetime | None
    event_ids: tuple[UUID, ...]
    meddra_llt_code: str | None = None
    #: The fact that first made the AE serious (the one SAE-01 fired on), if any.
    serious_since: UUID | None = None
    relatedness_plasma_exchange: str = "not_applicable"
    #: Case identity shared by an initial report and its follow-up records (ICH E2D): the
    #: records of one case keep their own refs, and the SAE-family rules act once per case.
    case_id: str | None = None


class AdverseEvents:
    """Every AE of a participant by `ae_ref`: an immutable map read as the tuple sorted by ref.

    AEs are never pruned, and the tuple this replaces was copied, re-sorted and scanned on
    every AE fact (20,000 AEs: 30x slower per fact). Here a changed copy costs O(log n)
    (a persistent hash trie by ref, and one by event id so `holding` needs no scan), and
    the subsets rules ask for (`subset`, by their test) are carried along, updated per change.
    Iterating, indexing, `len` and comparing with a tuple read the AEs in `ae_ref` order,
    as the tuple was kept; that tuple is made once per map, when first asked for.
    """

    __slots__ = ("_by_event", "_by_ref", "_size", "_sorted", "_subsets")

    def __init__(
        self,
        by_ref: _trie.Node = _trie.EMPTY,
        by_event: _trie.Node = _trie.EMPTY,
        size: int = 0,
        subsets: dict[Keep, _Subset] | None = None,
    ) -> None:
        self._by_ref = by_ref
        #: event id (as an int) -> the refs of the AEs whose `event_ids` hold it, sorted
        #: (one, in a log whose event ids are unique).
        self._by_event = by_event
        self._size = size
        self._sorted: tuple[AdverseEventState, ...] | None = None
        self._subsets: dict[Keep, _Subset] = {} if subsets is None else subsets

    @classmethod
    def of(cls, aes: Iterable[AdverseEventState]) -> AdverseEvents:
        """The map of `aes` (a later AE of the same ref replaces an earlier one)."""
        table = EMPTY_AES
        for ae in aes:
            table = table.with_(ae)
        return table

    def get(self, ae_ref: str) -> AdverseEventState | None:
        """The AE with this reference, if one was reported."""
        found: AdverseEventState | None = _trie.get(self._by_ref, ae_ref, _trie.code_of(ae_ref))
        return found

    def holding(self, event_id: UUID) -> tuple[AdverseEventState, ...]:
        """The AEs whose `event_ids` hold `event_id`, in `ae_ref` order (at most one, usually)."""
        target = event_id.int
        refs: tuple[str, ...] | None = _trie.get(self._by_event, target, _trie.code_of(target))
        if refs is None:
            return ()
        found = (self.get(ref) for ref in refs)
        return tuple([ae for ae in found if ae is not None])

    def with_(self, ae: AdverseEventState) -> AdverseEvents:
        """A copy where `ae` replaces any AE with the same reference."""
        ref, code = ae.ae_ref, _trie.code_of(ae.ae_ref)
        prior: AdverseEventState | None = _trie.get(self._by_ref, ref, code)
        by_ref = _trie.put(self._by_ref, ref, ae, code)
        old = () if prior is None else prior.event_ids
        new = ae.event_ids
        by_event = self._by_event
        if new[: len(old)] == old:  # the usual change: the AE's ids and the new fact's
            added = new[len(old) :]
        else:
            by_event = _unindexed_all(by_event, old, frozenset(new), ref)
            added = new
        for event_id in added:
            by_event = _indexed(by_event, event_id.int, ref)
        subsets = {keep: s.changed(prior, ae) for keep, s in self._subsets.items()}
        return AdverseEvents(by_ref, by_event, self._size + (prior is None), subsets)

    def without(self, ae_ref: str) -> AdverseEvents:
        """A copy without the AE of this reference (this map when there is none)."""
        code = _trie.code_of(ae_ref)
        prior: AdverseEventState | None = _trie.get(self._by_ref, ae_ref, code)
        if prior is None:
            return self
        by_ref = _trie.drop(self._by_ref, ae_ref, code)
        by_event = _unindexed_all(self._by_event, prior.event_ids, frozenset(), ae_ref)
        subsets = {keep: s.changed(prior, None) for keep, s in self._subsets.items()}
        return AdverseEvents(by_ref, by_event, self._size - 1, subsets)

    def subset(self, keep: Keep) -> tuple[AdverseEventState, ...]:
        """The AEs `keep` holds for, in `ae_ref` order.

        Made in one pass the first time `keep` is asked of a map, then carried to every map
        made from it and updated per changed AE, so a rule that reads the few AEs of one
        sort (bleeding, catheter infection) on every fact does not scan all of them. `keep`
        must be a pure function of the AE (a module-level one: it is the memo's key).
        """
        found = self._subsets.get(keep)
        if found is None:
            members = {ae.ae_ref: ae for ae in self if keep(ae)}
            # A memo of a pure function of this immutable map, carried on by `with_`.
            found = self._subsets[keep] = _Subset(keep, members)
        return found.ordered()

    def _ordered(self) -> tuple[AdverseEventState, ...]:
        ordered = self._sorted
        if ordered is None:
            found: Iterator[tuple[str, AdverseEventState]] = _trie.items(self._by_ref)
            ordered = self._sorted = tuple(ae for _, ae in sorted(found, key=_first))
        return ordered

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __iter__(self) -> Iterator[AdverseEventState]:
        return iter(self._ordered())

    @overload
    def __getitem__(self, index: int) -> AdverseEventState: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[AdverseEventState, ...]: ...
    def __getitem__(self, index: int | slice) -> AdverseEventState | tuple[AdverseEventState, ...]:
        return self._ordered()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AdverseEvents):
            return self._size == other._size and _trie.equal(self._by_ref, other._by_ref)
        if isinstance(other, tuple):
            return self._ordered() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._ordered())

    def __repr__(self) -> str:
        return f"AdverseEvents({self._ordered()!r})"


#: A pure test of an AE that picks a subset (`AdverseEvents.subset`).
Keep = Callable[[AdverseEventState], bool]


class _Subset:
    """The members of one named `AdverseEvents.subset`, by ref, and their sorted tuple."""

    __slots__ = ("keep", "members", "sorted")

    def __init__(self, keep: Keep, members: dict[str, AdverseEventState]) -> None:
        self.keep = keep
        self.members = members  # never changed once made: `changed` copies
        self.sorted: tuple[AdverseEventState, ...] | None = None

    def changed(self, prior: AdverseEventState | None, ae: AdverseEventState | None) -> _Subset:
        """The subset after `prior` became `ae` (None: absent); the same one when unchanged."""
        was = prior is not None and prior.ae_ref in self.members
        now = ae is not None and self.keep(ae)
        if not was and not now:
            return self
        members = dict(self.members)  # the few AEs of one sort, not all of them
        if was and prior is not None:
            del members[prior.ae_ref]
        if now and ae is not None:
            members[ae.ae_ref] = ae
        return _Subset(self.keep, members)

    def ordered(self) -> tuple[AdverseEventState, ...]:
        if self.sorted is None:
            self.sorted = tuple(self.members[ref] for ref in sorted(self.members))
        return self.sorted


def _indexed(node: _trie.Node, key: int, ref: str) -> _trie.Node:
    code = _trie.code_of(key)
    refs: tuple[str, ...] = _trie.get(node, key, code) or ()
    if ref in refs:
        return node
    return _trie.put(node, key, tuple(sorted((*refs, ref))), code)


def _unindexed_all(
    node: _trie.Node, old: tuple[UUID, ...], kept: frozenset[UUID], ref: str
) -> _trie.Node:
    """`node` without `ref` under the ids of `old` that are not `kept`."""
    for event_id in old:
        if event_id not in kept:
            node = _unindexed(node, event_id.int, ref)
    return node


def _unindexed(node: _trie.Node, key: int, ref: str) -> _trie.Node:
    code = _trie.code_of(key)
    refs: tuple[str, ...] = _trie.get(node, key, code) or ()
    kept = tuple(r for r in refs if r != ref)
    if len(kept) == len(refs):
        return node
    return _trie.put(node, key, kept, code) if kept else _trie.drop(node, key, code)


def _first(item: tuple[str, AdverseEventState]) -> str:
    return item[0]


EMPTY_AES = AdverseEvents()


@dataclass(frozen=True, slots=True)
class DeathInfo:
    """A recorded death: when (clinical time) and the fact that recorded it."""

    died_at: datetime
    event_id: UUID
    cause_category: str
    related_ae_ref: str | None


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A raised signal a later correction may retract (RULES.md §0.2 "amended results").

    `evidence` are the facts it rests on (plus corrections it survived); `keys` and
    `families` are the raised keys and episode families its rule set when it fired, undone
    on retraction so the rule can fire again if the finding returns. `level` is the
    clinical urgency rank (U3 0 ... U0 3) before any paging deferral.
    """

    signal_id: UUID
    rule_id: str
    rule_version: int
    category: str
    title: str
    urgency: str
    recipients: tuple[str, ...]
    level: int
    at: datetime
    cause_id: UUID
    evidence: tuple[UUID, ...]
    keys: tuple[str, ...] = ()
    families: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SaeClock:
    """An open SAE-02 sponsor-report clock of one serious AE (RULES.md §1, 24 h).

    `opened_by` is the fact that made the AE serious (SAE-01's trigger); `reminded` says
    the due - 4 h reminder went out. The clock closes when the SAE is reported to the
    sponsor, when the AE stops being serious, or once the overdue alert has gone out.
    """

    ae_ref: str
    due_at: datetime
    opened_by: UUID
    reminded: bool = False


@dataclass(frozen=True, slots=True)
class SusarClock:
    """An open SUSAR-01 report clock to the authority (ICH E2A; EU CT Reg. 536/2014 Art. 42).

    `report` is "initial" (7 days, fatal or life-threatening SUSARs) or "complete" (15
    days); `case` is the case key the clock belongs to (one clock of each report per case),
    `ae_ref` the record that opened it, `opened_by` the fact that did.
    """

    case: str
    ae_ref: str
    report: str
    due_at: datetime
    opened_by: UUID
    reminded: bool = False


@dataclass(frozen=True, slots=True)
class ByKind:
    """One `observations` tuple grouped by kind, each group in the tuple's order.

    Valid only beside the very tuple it was made from (`source`, compared by identity; the
    reference keeps that tuple alive, so its id cannot be reused by another).
    """

    source: tuple[Observation, ...]
    groups: dict[str, tuple[Observation, ...]]

    @classmethod
    def of(cls, observations: tuple[Observation, ...]) -> ByKind:
        """Group `observations` by kind in one pass."""
        groups: dict[str, list[Observation]] = {}
        for observation in observations:
            group = groups.get(observation.kind)
            if group is None:
                groups[observation.kind] = [observation]
            else:
                group.append(observation)
        return cls(observations, {kind: tuple(group) for kind, group in groups.items()})


#: What `observed_in` was asked: a fact's id as an integer, a clinical time, the kinds.
_Asked = tuple[int, datetime | None, tuple[str, ...] | None]


def observation_order(o: Observation) -> tuple[datetime, str, int]:
    """The order `observations` are kept in: clinical time, kind, event id."""
    return (o.at, o.kind, o.event_id.int)


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """What the rules know about one participant; `raised` holds keys already signalled."""

    trial_id: str
    participant_id: str
    site_id: str
    arm: str | None = None
    enrolled_at: datetime | None = None
    procedures: tuple[Procedure, ...] = ()
    #: Read as a tuple sorted by ae_ref; a tuple given here is made into the map.
    adverse_events: AdverseEvents = EMPTY_AES
    death: DeathInfo | None = None
    raised: frozenset[str] = field(default_factory=frozenset)
    observations: tuple[Observation, ...] = ()  # sorted by (at, kind, event_id)
    episodes: tuple[Episode, ...] = ()  # sorted by (family, first_at)
    clock: datetime | None = None  # newest clinical time seen (never past its recording)
    baseline_meld: int | None = None  # from the enrolment payload (RULES.md LFP-02)
    #: Last observation of each kind before randomisation (RULES.md §0.2 baseline), kept
    #: apart from `observations` so pruning never loses it; sorted by kind.
    baselines: tuple[Observation, ...] = ()
    #: Signals still standing, oldest first, kept for the retraction horizon.
    live_signals: tuple[SignalRecord, ...] = ()
    #: (original fact, the correction that stands for it now), for corrected facts only.
    corrections: tuple[tuple[UUID, UUID], ...] = ()
    #: Open SAE-02 clocks, by ae_ref; and the AEs already reported to the sponsor.
    sae_clocks: tuple[SaeClock, ...] = ()
    sae_reported: frozenset[str] = field(default_factory=frozenset)
    #: Open SUSAR-01 clocks, by (case, report); and the "<case>|<report>" reports recorded.
    susar_clocks: tuple[SusarClock, ...] = ()
    susar_reported: frozenset[str] = field(default_factory=frozenset)
    #: `observations` by kind, so `series` of one kind costs no pass over the history
    #: (every fact asks for a few kinds of a ~250-observation history). An init
    #: field so that `dataclasses.replace` hands it to the copy; it is used only while the
    #: copy keeps the very same `observations` (checked by identity), and `with_observations`
    #: and `prune` pass on an updated one with the history they make; otherwise it is made
    #: afresh when asked. It takes no part in `==`, the hash or the JSON form.
    by_kind: ByKind | None = field(default=None, repr=False, compare=False)
    #: `series` results of several kinds already computed for this state (the
    #: rules ask for the same kinds many times per fact, e.g. MELD inputs over a 14-day
    #: lookback). Safe: a pure function of `observations`, which never change on this frozen
    #: object; every copy (`dataclasses.replace`) starts empty, and it takes no part in `==`,
    #: the hash or the JSON form.
    _series: dict[tuple[str, ...], tuple[Observation, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: Likewise `observed_in`'s observations of one fact (by its id's integer value, the
    #: clinical time asked about and the kinds asked for; None: all kinds): most rules ask
    #: it of each fact.
    _of_fact: dict[_Asked, tuple[Observation, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if type(self.adverse_events) is not AdverseEvents:  # a tuple, as states were made
            object.__setattr__(self, "adverse_events", AdverseEvents.of(self.adverse_events))

    @property
    def has_open_clock(self) -> bool:
        """Whether a clock tick can act on this participant (SAE-02 or SUSAR-01 clock open)."""
        return bool(self.sae_clocks or self.susar_clocks)

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: (trial_id, participant_id)."""
        return (self.trial_id, self.participant_id)

    def adverse_event(self, ae_ref: str) -> AdverseEventState | None:
        """Return the AE with this reference, if one was reported."""
        return self.adverse_events.get(ae_ref)

    def adverse_event_of(self, event_id: UUID) -> AdverseEventState | None:
        """The first AE (by ref) whose `event_ids` hold `event_id`, if any."""
        found = self.adverse_events.holding(event_id)
        return found[0] if found else None

    def with_adverse_event(self, ae: AdverseEventState) -> ParticipantState:
        """Return a copy where `ae` replaces any AE with the same reference."""
        return replace(self, adverse_events=self.adverse_events.with_(ae))

    def with_raised(self, key: str) -> ParticipantState:
        """Return a copy that remembers `key` as signalled."""
        return replace(self, raised=self.raised | {key})

    def series(self, *kinds: str) -> tuple[Observation, ...]:
        """Observations of the given kinds, oldest first."""
        if len(kinds) == 1:  # the usual question
            return self.grouped().get(kinds[0], ())
        found = self._series.get(kinds)
        if found is None:
            found = tuple([o for o in self.observations if o.kind in kinds])
            self._series[kinds] = found
        return found

    def grouped(self) -> dict[str, tuple[Observation, ...]]:
        """`observations` by kind (see `by_kind`), made once per history."""
        index = self.by_kind
        if index is None or index.source is not self.observations:
            index = ByKind.of(self.observations)
            # A memo of a pure function of `observations`, as `_series` is: not a change.
            object.__setattr__(self, "by_kind", index)
        return index.groups

    def valid_by_kind(self) -> ByKind | None:
        """`by_kind` when it is that of this state's `observations` (else None)."""
        index = self.by_kind
        return index if index is not None and index.source is self.observations else None

    def observed_in(
        self, event_id: UUID, *kinds: str, at: datetime | None = None
    ) -> tuple[Observation, ...]:
        """Observations of these kinds that the fact `event_id` contributed.

        `at`, when known, is their clinical time: only observations at that time are looked
        at (the tuple is sorted by time), which keeps this cheap on long histories.
        """
        target = event_id.int  # UUIDs are equal exactly when their integers are
        asked = (target, at, kinds)
        found = self._of_fact.get(asked)
        if found is None:
            key = (target, at, None)  # all of the fact's observations, before the kinds filter
            mine = self._of_fact.get(key)
            if mine is None:
                mine = tuple([o for o in _at(self.observations, at) if o.event_id.int == target])
                self._of_fact[key] = mine
            found = self._of_fact[asked] = tuple([o for o in mine if o.kind in kinds])
        return found

    def between(self, start: datetime, end: datetime, *kinds: str) -> tuple[Observation, ...]:
        """Observations of these kinds with `start <= at <= end`, oldest first.

        The same as filtering `series(*kinds)` by time, read from the time-sorted history by
        bisection, so a short window costs its length rather than the whole history's.
        """
        pool = self.observations
        window = pool[bisect_left(pool, start, key=_time) : bisect_right(pool, end, key=_time)]
        return tuple([o for o in window if o.kind in kinds])

    def baseline(self, kind: str) -> Observation | None:
        """The last observation of `kind` before randomisation, if any."""
        for observation in self.baselines:  # a plain loop: asked for every graded result
            if observation.kind == kind:
                return observation
        return None


def _time(observation: Observation) -> datetime:
    return observation.at


def _at(observations: tuple[Observation, ...], at: datetime | None) -> tuple[Observation, ...]:
    """The observations at clinical time `at` (all of them for None), from the sorted tuple.

    A fact's observations are usually the newest: then they are the tuple's tail, found by
    stepping back from the end; otherwise by bisection.
    """
    if at is None:
        return observations
    if not observations or observations[-1].at < at:
        return ()
    if observations[-1].at == at:
        start = len(observations) - 1
        while start and observations[start - 1].at == at:
            start -= 1
        return observations[start:]
    return observations[
        bisect_left(observations, at, key=_time) : bisect_right(observations, at, key=_time)
    ]
