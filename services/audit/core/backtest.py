"""Backtest a candidate rule over the whole log; diff it against what the live rule raised (pure).

Both sides replay the full history (a candidate is judged on everything it would have seen);
the diff covers the one rule's signals whose clinical time (`occurred_at`) falls in the
window asked for. Per participant a signal is:
- `gained`: only the candidate raises it; `lost`: only the live rule did;
- `retimed`: both fire for the participant, but on different facts: the n-th unmatched live
  signal pairs with the n-th unmatched candidate signal, in clinical-time order;
- `changed`: same signal id (same rule, participant and triggers), different bytes
  (urgency, values, reason); the stamped `config_version` alone does not count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas import canonical_bytes
from services.audit.core.replayed import ReplayedSignal, ReplayResult


@dataclass(frozen=True, slots=True)
class Brief:
    """Enough of a signal to find it again: id, clinical time, urgency, log position."""

    signal_id: str
    occurred_at: datetime
    urgency: str
    seq: int


@dataclass(frozen=True, slots=True)
class Retimed:
    """The live signal and the candidate's that replaces it, and the shift in clinical time."""

    live: Brief
    candidate: Brief

    @property
    def shift(self) -> timedelta:
        """Candidate minus live clinical time (negative: the candidate fires earlier)."""
        return self.candidate.occurred_at - self.live.occurred_at


@dataclass(frozen=True, slots=True)
class ParticipantDiff:
    """What changes for one participant."""

    trial_id: str
    participant_id: str
    gained: tuple[Brief, ...] = ()
    lost: tuple[Brief, ...] = ()
    retimed: tuple[Retimed, ...] = ()
    changed: tuple[Brief, ...] = ()


@dataclass(frozen=True, slots=True)
class Backtest:
    """The diff of one rule, live against candidate, over a clinical-time window."""

    rule_id: str
    live_version: str
    candidate_version: str
    window: tuple[datetime | None, datetime | None]
    live_count: int
    candidate_count: int
    participants: tuple[ParticipantDiff, ...]

    @property
    def identical(self) -> bool:
        """True when the candidate raises exactly what the live rule raised."""
        return not self.participants


def diff(
    rule_id: str,
    live: ReplayResult,
    candidate: ReplayResult,
    *,
    window: tuple[datetime | None, datetime | None] = (None, None),
    versions: tuple[str, str],
) -> Backtest:
    """Diff the two replays' signals of `rule_id` in the window, per participant."""
    ours = _of_rule(live.signals, rule_id, window)
    theirs = _of_rule(candidate.signals, rule_id, window)
    keys = sorted(set(ours) | set(theirs))
    changes = [_participant(key, ours.get(key, []), theirs.get(key, [])) for key in keys]
    return Backtest(
        rule_id=rule_id,
        live_version=versions[0],
        candidate_version=versions[1],
        window=window,
        live_count=sum(len(v) for v in ours.values()),
        candidate_count=sum(len(v) for v in theirs.values()),
        participants=tuple(c for c in changes if c.gained or c.lost or c.retimed or c.changed),
    )


def _of_rule(
    signals: Sequence[ReplayedSignal],
    rule_id: str,
    window: tuple[datetime | None, datetime | None],
) -> dict[tuple[str, str], list[ReplayedSignal]]:
    start, end = window
    found: dict[tuple[str, str], list[ReplayedSignal]] = defaultdict(list)
    for item in signals:
        signal = item.signal
        if signal.payload.rule_id != rule_id:
            continue
        if (start is not None and signal.occurred_at < start) or (
            end is not None and signal.occurred_at > end
        ):
            continue
        found[(signal.trial_id, signal.participant_id)].append(item)
    return found


def _essence(item: ReplayedSignal) -> bytes:
    """Canonical bytes without the stamped config version, which differs by construction."""
    wire = item.signal.model_dump(mode="json")
    wire["payload"]["values"].pop("config_version", None)
    return canonical_bytes(wire)


def _brief(item: ReplayedSignal) -> Brief:
    signal = item.signal
    return Brief(str(signal.event_id), signal.occurred_at, signal.payload.urgency.value, item.seq)


def _participant(
    key: tuple[str, str], live: list[ReplayedSignal], candidate: list[ReplayedSignal]
) -> ParticipantDiff:
    live_ids = {str(i.signal.event_id): i for i in live}
    cand_ids = {str(i.signal.event_id): i for i in candidate}
    changed = tuple(
        _brief(cand_ids[sid])
        for sid in live_ids
        if sid in cand_ids and _essence(live_ids[sid]) != _essence(cand_ids[sid])
    )
    only_live = sorted((_brief(i) for s, i in live_ids.items() if s not in cand_ids),
                       key=lambda b: (b.occurred_at, b.seq))  # fmt: skip
    only_cand = sorted((_brief(i) for s, i in cand_ids.items() if s not in live_ids),
                       key=lambda b: (b.occurred_at, b.seq))  # fmt: skip
    pairs = min(len(only_live), len(only_cand))
    return ParticipantDiff(
        trial_id=key[0],
        participant_id=key[1],
        gained=tuple(only_cand[pairs:]),
        lost=tuple(only_live[pairs:]),
        retimed=tuple(Retimed(a, b) for a, b in zip(only_live, only_cand, strict=False)),
        changed=changed,
    )
