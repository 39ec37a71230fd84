"""Deterministic, realistic demo feed of source submissions for NCT01724398 (demo tooling).

The feed is what the sites' systems would send to ingest for the UC-MSC / plasma-exchange
trial in HBV-related acute-on-chronic liver failure: randomisations, procedures, laboratory
results, vital signs, West Haven assessments, adverse events and their updates, SAE reports to
the sponsor, deaths and withdrawals. Each item is a JSON-ready dict shaped as
`schemas.Submission`, and the list is in arrival order: sorted by the minute the source sends
it (labs hours after collection, AEs hours to days after onset, blood cultures 2-3 days after
they are taken), ties broken by participant and record order.

The same arguments give byte-identical output: all randomness comes from `random.Random`
seeded from `seed`, and nothing reads the clock. Generation is lazy: participants are merged
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

from safetymon.demo._clock import DAY, Clock
from safetymon.demo._cohort import plan_cohort
from safetymon.demo._participant import FeedContext, plan_participant
from safetymon.demo._render import Renderer
from safetymon.demo._tasks import Task

DEFAULT_SEED: Final = 1724398
DEFAULT_START: Final = datetime(2024, 1, 8, tzinfo=UTC)
DEFAULT_SITES: Final = ("S01", "S02", "S03")
TRIAL_ID: Final = "NCT01724398"
# Submissions per participant of a 48-week feed, on the low side (deaths cut histories short).
_PER_PARTICIPANT: Final = 290

__all__ = ["generate_events", "generate_feed", "iter_feed", "summarise"]


def iter_feed(  # noqa: PLR0913 - the feed's parameters, all keyword-only with defaults
    *,
    seed: int = DEFAULT_SEED,
    participants: int = 120,
    sites: tuple[str, ...] = DEFAULT_SITES,
    weeks: int = 48,
    start: datetime = DEFAULT_START,
    trial_id: str = TRIAL_ID,
    blood_cultures: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield the demo feed lazily, in arrival order; the items of `generate_feed`.

    Args:
        seed: Seed of every random choice.
        participants: Number randomised (1:1:1:1 in permuted blocks of four).
        sites: Site codes; the first three have distinct laboratory conventions.
        weeks: Follow-up per participant (the protocol's is 48 weeks).
        start: First possible randomisation day (enrolment runs for about six months);
            minute precision.
        trial_id: Registry id on every submission.
        blood_cultures: Include blood culture results (LOINC 600-7).

    Raises:
        ValueError: At once (not on the first item) for no participants, no sites, no
            weeks or a naive `start`.

    """
    if participants < 1 or not sites or weeks < 1 or start.utcoffset() is None:
        msg = "need participants >= 1, at least one site, weeks >= 1 and an aware start"
        raise ValueError(msg)
    return _iter_cohort(
        seed=seed,
        participants=participants,
        sites=sites,
        weeks=weeks,
        start=start,
        trial_id=trial_id,
        blood_cultures=blood_cultures,
    )


def generate_feed(  # noqa: PLR0913 - same keyword-only parameters as iter_feed
    *,
    seed: int = DEFAULT_SEED,
    participants: int = 120,
    sites: tuple[str, ...] = DEFAULT_SITES,
    weeks: int = 48,
    start: datetime = DEFAULT_START,
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
            start=start,
            trial_id=trial_id,
            blood_cultures=blood_cultures,
        )
    )


def generate_events(n: int, *, seed: int = DEFAULT_SEED) -> Iterator[dict[str, Any]]:
    """Yield exactly `n` submissions (so at least `n`), scaling the cohort to need them.

    The cohort gets about n / 290 participants (a multiple of four) and the stream stops at
    the n-th item; should a cohort run short, another follows with the next participant
    numbers. Meant for throughput benchmarks.
    """
    if n <= 0:
        return
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
                start=DEFAULT_START,
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


def _iter_cohort(  # noqa: PLR0913 - iter_feed's parameters plus the numbering offset
    *,
    seed: int,
    participants: int,
    sites: tuple[str, ...],
    weeks: int,
    start: datetime,
    trial_id: str,
    blood_cultures: bool,
    first_number: int = 1,
) -> Iterator[dict[str, Any]]:
    clock = Clock(start)
    ctx = FeedContext(clock=clock, trial_id=trial_id, weeks=weeks, blood_cultures=blood_cultures)
    cohort = plan_cohort(
        seed=seed,
        participants=participants,
        sites=sites,
        weeks=weeks,
        clock=clock,
        first_number=first_number,
    )
    # A participant's first task (baseline bloods) is at most a few hours before
    # randomisation, so it need not be planned before the feed reaches that time.
    wake = [enrolment.randomised_at - DAY for enrolment in cohort]
    active: list[tuple[int, int, Task, Iterator[Task], Renderer]] = []
    outbox: list[tuple[int, int, dict[str, Any]]] = []
    push, pop, replace = heapq.heappush, heapq.heappop, heapq.heapreplace
    waiting = 0
    while active or waiting < len(cohort):
        while waiting < len(cohort) and (not active or wake[waiting] <= active[0][0]):
            renderer, tasks = plan_participant(cohort[waiting], ctx, order_base=waiting << 32)
            task = next(tasks, None)
            if task is not None:
                push(active, (task[0], waiting, task, tasks, renderer))
            waiting += 1
        if not active:
            continue
        minute, index, task, tasks, renderer = active[0]
        # Every submission not yet rendered is sent at or after `minute`: release the rest.
        while outbox and outbox[0][0] < minute:
            yield pop(outbox)[2]
        for out in renderer.render(task):  # rendered only now: short-lived, cheap for the GC
            push(outbox, out)
        following = next(tasks, None)
        if following is None:
            pop(active)
        else:
            replace(active, (following[0], index, following, tasks, renderer))
    while outbox:
        yield pop(outbox)[2]


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
