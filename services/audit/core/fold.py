"""The replay's fold (pure): logged facts, in log order, through the live per-fact and tick steps.

Kept apart from the replayer (which reads the log, splits it over processes and merges the
results) and from the checkpoints (which store a fold's state), so both can hold a
`FoldState` without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from schemas import (
    ArrivingFact,
    ClockTicked,
    DeathRecorded,
    ParticipantEnrolled,
    ParticipantWithdrawn,
)
from services.audit.core import steps
from services.audit.core.timeline import Timeline
from services.rules.published.model import TrialConfig

Key = tuple[str, str]
#: Called with a log position once every fact up to it is folded (a checkpoint may be taken).
OnBoundary = Callable[[int, "FoldState"], None]


@dataclass(frozen=True, slots=True)
class LoggedFact:
    """One fact of the log with its position (seq orders the replay).

    A `ClockTicked` concerns no participant: it lets time pass for every participant of its
    trial with an open SAE-02 clock.
    """

    seq: int
    fact: ArrivingFact | ClockTicked


@dataclass(frozen=True, slots=True)
class ParticipantView:
    """What the log said about one participant as of the replay time."""

    trial_id: str
    participant_id: str
    site_id: str | None
    arm: str | None = None
    status: str = "known"  # enrolled, withdrawn, died; "known" when no enrolment is on the log
    facts: int = 0
    signals: int = 0
    first_recorded_at: datetime | None = None
    last_recorded_at: datetime | None = None


@dataclass(slots=True)
class FoldState:
    """Everything a partition's fold carries from one fact to the next (and a checkpoint keeps)."""

    states: dict[Key, steps.State] = field(default_factory=dict)
    #: Each state's JSON as the last checkpoint wrote or read it. Decoding is most of a
    #: checkpoint's load and encoding most of its save, and most participants of a long log
    #: get no new fact between two checkpoints: `state` decodes one only when a fact needs
    #: it, and a save encodes only the states changed since (`changed`).
    stored: dict[Key, str] = field(default_factory=dict)
    changed: set[Key] = field(default_factory=set)
    #: The keys `evaluate_tick` can act on (an open SAE-02 or SUSAR-01 clock); the rest it
    #: skips.
    open_clocks: set[Key] = field(default_factory=set)
    facts: int = 0
    ticks: int = 0
    last_seq: int | None = None
    views: dict[Key, ParticipantView] = field(default_factory=dict)
    #: (seq, participant key, position in this fold, signal JSON): see `replay._merge`.
    signals: list[tuple[int, Key, int, str]] = field(default_factory=list)

    def state(self, key: Key) -> steps.State | None:
        """The participant's projection (decoded now if it came from a checkpoint)."""
        found = self.states.get(key)
        if found is None and key in self.stored:
            found = self.states[key] = steps.decode_state(self.stored[key])
        return found

    def put(self, key: Key, state: steps.State) -> None:
        """Keep the participant's new projection."""
        self.states[key] = state
        self.changed.add(key)

    def encoded(self) -> dict[Key, str]:
        """Every state's JSON (encoding only those changed since the last call)."""
        for key in self.changed:
            self.stored[key] = steps.encode_state(self.states[key])
        self.changed.clear()
        return self.stored


def fold(
    facts: Iterable[LoggedFact],
    configs: TrialConfig | Timeline,
    *,
    start: FoldState | None = None,
    boundaries: Iterable[int] = (),
    on_boundary: OnBoundary | None = None,
) -> FoldState:
    """Fold facts in log order through the live per-fact step; collect views and signals.

    A clock tick goes through the live per-tick step with the states of the participants
    whose SAE-02 or SUSAR-01 clock is open (tracked here as the live store's `open_clocks`
    query finds them), so a replay fires the reminders and overdue alerts the live service fired.

    Args:
        facts: the logged facts, in seq order (those after `start`, when resuming).
        configs: the trial configuration the rules ran with, or the timeline of those live
            over the log (each fact is folded with the one live at its position).
        start: a fold state to continue from (a checkpoint's); None starts empty.
        boundaries: ascending log positions, none past a fact left out of `facts` (an as-of
            cut); once every fact up to one is folded (the next fact lies past it, or there
            is none), `on_boundary` is called with it and the state.
        on_boundary: see `boundaries`.

    """
    timeline = configs if isinstance(configs, Timeline) else Timeline.single(configs)
    switches = iter(timeline.switches())
    switch = next(switches, None)
    live = timeline.at(0)
    step, tick = steps.stepper(live), steps.ticker(live)
    out = start or FoldState()
    open_clocks = out.open_clocks
    state_of = out.state
    pending = iter(boundaries)
    boundary = next(pending, None)
    for logged in facts:
        while boundary is not None and logged.seq > boundary:
            if on_boundary is not None:
                on_boundary(boundary, out)
            boundary = next(pending, None)
        if switch is not None and logged.seq >= switch:
            # The live service was restarted with another configuration from here on.
            live = timeline.at(logged.seq)
            step, tick = steps.stepper(live), steps.ticker(live)
            while switch is not None and switch <= logged.seq:
                switch = next(switches, None)
        fact = logged.fact
        out.last_seq = logged.seq
        if isinstance(fact, ClockTicked):
            out.ticks += 1
            if not open_clocks:
                continue  # nothing to fan out to: evaluate_tick would change nothing
            ticked = tick({key: _known(state_of(key)) for key in open_clocks}, fact)
            for key, state in ticked.changed.items():
                out.put(key, state)
                _track_clock(open_clocks, key, state)
            for signal in ticked.signals:
                owner = (signal.trial_id, signal.participant_id)
                out.views[owner] = _signalled(out.views[owner])
                out.signals.append((logged.seq, owner, len(out.signals), signal.model_dump_json()))
            continue
        key = (fact.trial_id, fact.participant_id or "")
        outcome = step(state_of(key), fact)
        if outcome.state is not None:
            out.put(key, outcome.state)
            _track_clock(open_clocks, key, outcome.state)
        out.facts += 1
        out.views[key] = _seen(out.views.get(key), fact, signals=len(outcome.signals))
        base = len(out.signals)
        out.signals.extend(
            (logged.seq, key, base + i, signal.model_dump_json())
            for i, signal in enumerate(outcome.signals)
        )
    # The facts ran out: a boundary not passed yet still has every fact up to it folded
    # (this partition may simply have none past it).
    while boundary is not None and on_boundary is not None:
        if out.last_seq is None or out.last_seq <= boundary:
            on_boundary(boundary, out)
        boundary = next(pending, None)
    return out


def _known(state: steps.State | None) -> steps.State:
    if state is None:  # open_clocks only ever holds keys whose state is kept
        raise AssertionError("an open report clock without a participant state")
    return state


def _track_clock(open_clocks: set[Key], key: Key, state: steps.State) -> None:
    if state.has_open_clock:  # the live store's `open_clocks` test
        open_clocks.add(key)
    else:
        open_clocks.discard(key)


def _signalled(view: ParticipantView) -> ParticipantView:
    return replace(view, signals=view.signals + 1)


def _seen(view: ParticipantView | None, fact: ArrivingFact, *, signals: int) -> ParticipantView:
    current = view or ParticipantView(
        fact.trial_id, fact.participant_id or "", fact.site_id, first_recorded_at=fact.recorded_at
    )
    status, arm = current.status, current.arm
    if isinstance(fact, ParticipantEnrolled):
        status, arm = "enrolled", str(fact.payload.arm)
    elif isinstance(fact, ParticipantWithdrawn):
        status = "withdrawn"
    elif isinstance(fact, DeathRecorded):
        status = "died"
    return replace(
        current,
        site_id=fact.site_id or current.site_id,
        arm=arm,
        status=status,
        facts=current.facts + 1,
        signals=current.signals + signals,
        last_recorded_at=fact.recorded_at,
    )
