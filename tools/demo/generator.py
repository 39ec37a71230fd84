"""Deterministic, realistic demo feed of source submissions for NCT01724398 (demo tooling).

The feed is what the sites' systems would send to ingest for the UC-MSC / plasma-exchange
trial in HBV-related acute-on-chronic liver failure: randomisations, procedures, laboratory
results, vital signs, West Haven assessments, adverse events and their updates, SAE reports to
the sponsor, deaths and withdrawals. Each item is a JSON-ready dict shaped as
`schemas.Submission`, and the list is in arrival order: sorted by the minute the source sends
it (labs hours after collection, AEs hours to days after onset, blood cultures 2-3 days after
they are taken), ties broken by participant and record order.

The timeline ends at `now` (default: the current minute), so clocks, reminders and "late"
read as in a running trial: the historic history is moved by whole days until its follow-up
ends within the day after `now`, and nothing later than `now` is sent (`_placement.py`).
`start=` pins the first day instead (histories recorded against fixed dates).

The same arguments (`now` included) give byte-identical output: all randomness comes from
`random.Random` seeded from `seed`, and only a missing `now` reads the clock (in
`tools.demo.now`, never in the generator's modules). Generation is lazy: participants are merged
in send order with bounded look-ahead, so `iter_feed` and `generate_events` run in little
memory. Blood cultures (LOINC 600-7) are reported as a qualitative result, value 1 (organism
grown) or 0 (no growth) with unit "1".
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from tools.demo._clock import DAY, Clock, FeedContext
from tools.demo._cohort import Enrolment, plan_cohort
from tools.demo._measurements import MeasurementEmitter
from tools.demo._participant import plan_participant
from tools.demo._placement import HISTORIC_START, Placement, ending_at, pinned
from tools.demo._tasks import Task

DEFAULT_SEED: Final = 1724398
DEFAULT_SITES: Final = ("S01", "S02", "S03")
TRIAL_ID: Final = "NCT01724398"
# Submissions per participant of a 48-week feed, on the low side (deaths cut histories short).
_PER_PARTICIPANT: Final = 290

__all__ = ["HISTORIC_START", "generate_events", "generate_feed", "iter_feed", "summarise"]


def iter_feed(  # noqa: PLR0913 - the feed's parameters, all keyword-only with defaults
    *,
    seed: int = DEFAULT_SEED,
    participants: int = 120,
    sites: tuple[str, ...] = DEFAULT_SITES,
    weeks: int = 48,
    now: datetime | None = None,
    start: datetime | None = None,
    trial_id: str = TRIAL_ID,
    blood_cultures: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield the demo feed lazily, in arrival order; the items of `generate_feed`.

    Args:
        seed: Seed of every random choice.
        participants: Number randomised (1:1:1:1 in permuted blocks of four).
        sites: Site codes; the first three have distinct laboratory conventions.
        weeks: Follow-up per participant (the protocol's is 48 weeks).
        now: Where the timeline ends (aware; minute precision); None: the current minute.
        start: Pin the first possible randomisation day instead (enrolment runs for about
            six months; minute precision); nothing is cut. Not with `now`.
        trial_id: Registry id on every submission.
        blood_cultures: Include blood culture results (LOINC 600-7).

    Raises:
        ValueError: At once (not on the first item) for no participants, no sites, no
            weeks, a naive `now` or `start`, or both of them.

    """
    if participants < 1 or not sites or weeks < 1:
        msg = "need participants >= 1, at least one site and weeks >= 1"
        raise ValueError(msg)
    _check_times(now, start)
    return _iter_cohort(
        seed=seed,
        participants=participants,
        sites=sites,
        weeks=weeks,
        when=_resolve(now, start),
        trial_id=trial_id,
        blood_cultures=blood_cultures,
    )


def generate_feed(  # noqa: PLR0913 - same keyword-only parameters as iter_feed
    *,
    seed: int = DEFAULT_SEED,
    participants: int = 120,
    sites: tuple[str, ...] = DEFAULT_SITES,
    weeks: int = 48,
    now: datetime | None = None,
    start: datetime | None = None,
    trial_id: str = TRIAL_ID,
    blood_cultures: bool = True,
) -> list[dict[str, Any]]:
    """Return the whole demo feed as a list, in arrival order (see `iter_feed`)."""
    return list(
        iter_feed(
            seed=seed,
            participants=participants,
            sites=sites,
            weeks=weeks,
            now=now,
            start=start,
            trial_id=trial_id,
            blood_cultures=blood_cultures,
        )
    )


def generate_events(
    n: int,
    *,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    start: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield exactly `n` submissions (so at least `n`), scaling the cohort to need them.

    The cohort gets about n / 290 participants (a multiple of four) and the stream stops at
    the n-th item; should a cohort run short, another follows with the next participant
    numbers. Each cohort is placed by `now` or `start` as in `iter_feed`. Meant for
    throughput benchmarks; those that compare with recorded figures pin `start`.
    """
    _check_times(now, start)
    if n <= 0:
        return
    when = _resolve(now, start)
    remaining, first_number, cohort = n, 1, 0
    while remaining > 0:
        participants = 4 * math.ceil(remaining * 1.05 / _PER_PARTICIPANT / 4)
        produced = 0
        for item in itertools.islice(
            _iter_cohort(
                seed=seed + cohort,
                participants=participants,
                sites=DEFAULT_SITES,
                weeks=48,
                when=when,
                trial_id=TRIAL_ID,
                blood_cultures=True,
                first_number=first_number,
            ),
            remaining,
        ):
            produced += 1
            yield item
        remaining -= produced
        first_number += participants
        cohort += 1


def _check_times(now: datetime | None, start: datetime | None) -> None:
    if now is not None and start is not None:
        msg = "give now (the feed ends there) or start (it begins there), not both"
        raise ValueError(msg)
    if any(t is not None and t.utcoffset() is None for t in (now, start)):
        msg = "now and start must be timezone-aware"
        raise ValueError(msg)


def _resolve(now: datetime | None, start: datetime | None) -> datetime | Placement:
    """A pinned placement, or the moment the feed ends (the clock is read only here)."""
    if start is not None:
        return pinned(start)
    if now is not None:
        return now
    from tools.demo.now import current_minute  # the shell: the one clock read

    return current_minute()


def _placed(cohort: list[Enrolment], *, now: datetime, weeks: int) -> Placement:
    # As in plan_participant: follow-up ends a day after the last protocol day.
    follow_up_end = max(e.randomised_at for e in cohort) + weeks * 7 * DAY + DAY
    return ending_at(now, follow_up_end=follow_up_end)


def _iter_cohort(  # noqa: PLR0913 - iter_feed's parameters plus the numbering offset
    *,
    seed: int,
    participants: int,
    sites: tuple[str, ...],
    weeks: int,
    when: datetime | Placement,
    trial_id: str,
    blood_cultures: bool,
    first_number: int = 1,
) -> Iterator[dict[str, Any]]:
    def plan(clock: Clock) -> list[Enrolment]:
        return plan_cohort(
            seed=seed,
            participants=participants,
            sites=sites,
            weeks=weeks,
            clock=clock,
            first_number=first_number,
        )

    # Whole-day moves leave the plan (minutes after the start) as it is: plan once on the
    # historic day grid to place the feed, then on the placed clock to render it.
    placement = (
        when
        if isinstance(when, Placement)
        else _placed(plan(Clock(HISTORIC_START)), now=when, weeks=weeks)
    )
    clock = Clock(placement.start)
    ctx = FeedContext(clock=clock, trial_id=trial_id, weeks=weeks, blood_cultures=blood_cultures)
    sent = _merge(plan(clock), ctx)
    if placement.cut is None:
        yield from (item for _, item in sent)
        return
    for minute, item in sent:
        if minute > placement.cut:  # sent in send order: everything after is later still
            return
        yield item


def _merge(cohort: list[Enrolment], ctx: FeedContext) -> Iterator[tuple[int, dict[str, Any]]]:
    """Merge the participants' submissions in send order, with the minute each is sent."""
    # A participant's first task (baseline bloods) is at most a few hours before
    # randomisation, so it need not be planned before the feed reaches that time.
    wake = [enrolment.randomised_at - DAY for enrolment in cohort]
    active: list[tuple[int, int, Task, Iterator[Task], MeasurementEmitter]] = []
    outbox: list[tuple[int, int, dict[str, Any]]] = []
    push, pop, replace = heapq.heappush, heapq.heappop, heapq.heapreplace
    waiting = 0
    while active or waiting < len(cohort):
        while waiting < len(cohort) and (not active or wake[waiting] <= active[0][0]):
            emitter, tasks = plan_participant(cohort[waiting], ctx, order_base=waiting << 32)
            task = next(tasks, None)
            if task is not None:
                push(active, (task[0], waiting, task, tasks, emitter))
            waiting += 1
        if not active:
            continue
        minute, index, task, tasks, emitter = active[0]
        # Every submission not yet rendered is sent at or after `minute`: release the rest.
        while outbox and outbox[0][0] < minute:
            out = pop(outbox)
            yield out[0], out[2]
        for out in emitter.render(task):  # rendered only now: short-lived, cheap for the GC
            push(outbox, out)
        following = next(tasks, None)
        if following is None:
            pop(active)
        else:
            replace(active, (following[0], index, following, tasks, emitter))
    while outbox:
        out = pop(outbox)
        yield out[0], out[2]


def summarise(feed: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count what a feed contains, for the demo printout (deterministic, JSON-ready).

    SAEs are AEs whose latest version has a seriousness criterion; SUSAR candidates are SAEs
    possibly, probably or definitely related to UC-MSC and unexpected.
    """
    by_type: Counter[str] = Counter()
    arms: dict[str, str] = {}
    sites: dict[str, str] = {}
    latest: dict[str, Mapping[str, Any]] = {}
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    for item in feed:
        event_type = item["event_type"]
        by_type[event_type] += 1
        payload = item["payload"]
        if event_type == "participant_enrolled":
            arms[item["participant_id"]] = payload["arm"]
            sites[item["participant_id"]] = item["site_id"]
        elif event_type in {"adverse_event_reported", "adverse_event_updated"}:
            latest[payload["ae_ref"]] = payload
        occurred = datetime.fromisoformat(item["occurred_at"])
        first_seen = occurred if first_seen is None or occurred < first_seen else first_seen
        last_seen = occurred if last_seen is None or occurred > last_seen else last_seen
    serious = [ae for ae in latest.values() if ae["seriousness_criteria"]]
    suspected = {"possible", "probable", "definite"}
    return {
        "events": sum(by_type.values()),
        "by_event_type": dict(sorted(by_type.items())),
        "participants": len(arms),
        "participants_per_arm": dict(sorted(Counter(arms.values()).items())),
        "participants_per_site": dict(sorted(Counter(sites.values()).items())),
        "adverse_events": len(latest),
        "serious_adverse_events": len(serious),
        "susar_candidates": sum(
            ae["relatedness_uc_msc"] in suspected and ae["expectedness"] == "unexpected"
            for ae in serious
        ),
        "deaths": by_type["death_recorded"],
        "withdrawals": by_type["participant_withdrawn"],
        "first_occurred_at": _utc(first_seen),
        "last_occurred_at": _utc(last_seen),
    }


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
