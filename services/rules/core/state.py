"""Per-participant projection the rules read (core layer): frozen, JSON round-trippable.

Histories are bounded: `observations` and non-protocol `procedures` are pruned by clinical
time relative to the newest fact seen (`clock`), keeping each kind's longest rule window
plus the late-data allowance (see `projection.retention`); alert `episodes` likewise. AEs,
UC-MSC infusions and plasma exchanges are kept whole (few per participant by protocol), and
so is the last pre-randomisation observation of each kind (`baselines`, RULES.md §0.2).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID


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
    `low`/`high` are the reporting laboratory's reference limits when it sent them.
    """

    kind: str
    at: datetime
    value: float
    event_id: UUID
    low: float | None = None
    high: float | None = None


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
class ByKind:
    """One `observations` tuple grouped by kind, each group in the tuple's order (issue 5).

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
    adverse_events: tuple[AdverseEventState, ...] = ()  # sorted by ae_ref
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
    #: `observations` by kind, so `series` of one kind costs no pass over the history
    #: (issue 5: every fact asked for a few kinds of a ~250-observation history). An init
    #: field so that `dataclasses.replace` hands it to the copy; it is used only while the
    #: copy keeps the very same `observations` (checked by identity), and `with_observations`
    #: and `prune` pass on an updated one with the history they make; otherwise it is made
    #: afresh when asked. It takes no part in `==`, the hash or the JSON form.
    by_kind: ByKind | None = field(default=None, repr=False, compare=False)
    #: `series` results of several kinds already computed for this state (issue 5: the
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

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: (trial_id, participant_id)."""
        return (self.trial_id, self.participant_id)

    def adverse_event(self, ae_ref: str) -> AdverseEventState | None:
        """Return the AE with this reference, if one was reported."""
        return next((ae for ae in self.adverse_events if ae.ae_ref == ae_ref), None)

    def with_adverse_event(self, ae: AdverseEventState) -> ParticipantState:
        """Return a copy where `ae` replaces any AE with the same reference."""
        others = [other for other in self.adverse_events if other.ae_ref != ae.ae_ref]
        ordered = tuple(sorted([*others, ae], key=lambda item: item.ae_ref))
        return replace(self, adverse_events=ordered)

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

    def to_json(self) -> str:
        """Serialise deterministically (sorted keys, no spaces) for storage."""
        from services.rules.core._state_codec import encode_state

        return encode_state(self)

    @classmethod
    def from_json(cls, text: str) -> ParticipantState:
        """Rebuild a state written by `to_json` (states stored before a field existed too)."""
        from services.rules.core._state_codec import decode_state

        return decode_state(text)


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
