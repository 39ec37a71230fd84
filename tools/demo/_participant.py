"""One participant's plan and its lazily generated stream of submissions (demo tooling).

The routine schedule (labs, vital signs, assessments) comes from a template shared by every
participant and is generated as the stream advances; only procedures, AE episodes and their
extra observations are planned up front, which keeps memory per participant small.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from functools import cache, partial
from random import Random
from typing import Final

from tools.demo import _complications as comp
from tools.demo import _episodes as proc
from tools.demo._clock import DAY, HOUR, Clock, FeedContext
from tools.demo._codes import (
    BACKGROUND_TERMS,
    BILIRUBIN,
    CREATININE,
    INR,
    LabSpec,
    lab_specs,
    meld,
    profile_for,
)
from tools.demo._cohort import Enrolment
from tools.demo._course import Course
from tools.demo._measurements import MeasurementEmitter
from tools.demo._planner import Planner
from tools.demo._tasks import (
    ASSESSMENT,
    DEATH,
    ENROLMENT,
    LABS,
    TERMINAL_ORDER,
    VITALS,
    WITHDRAWAL,
    Ending,
    Procedure,
    Task,
)

#: Protocol lab days: twice weekly for four weeks, then weeks 6-48.
LAB_DAYS: Final = (0, 3, 7, 10, 14, 17, 21, 24, 28, 42, 56, 84, 112, 140, 168, 224, 280, 336)
# Routine slots in Asia/Shanghai time: (start minute of day, number of 5-minute steps).
_SLOTS: Final = {LABS: (6 * HOUR, 18), VITALS: (8 * HOUR, 23), ASSESSMENT: (10 * HOUR, 23)}
# On the randomisation day everything is a baseline, taken before randomisation.
_BASELINE_STEPS: Final = {LABS: (24, 36), VITALS: (6, 18), ASSESSMENT: (1, 5)}
_PLASMA_EXCHANGE_DAYS: Final = (1, 4, 7)  # every 3 days x 3
_INFUSION_DAYS: Final = {"B": (1, 8, 15, 22), "D": (1, 7, 14, 21)}  # weekly x 4
_SPECIALS: Final[dict[str, Callable[[Planner], object]]] = {
    "susar_thrombosis": lambda p: proc.susar(p, sepsis=False),
    "susar_sepsis": lambda p: proc.susar(p, sepsis=True),
    "upgrade": lambda p: proc.infection(p, upgrade=True),
    "vb": comp.variceal_bleeding,
    "he_serious": lambda p: comp.encephalopathy(p, grade=3),
    "infection_serious": lambda p: proc.infection(p, serious=True),
    "aki_serious": lambda p: comp.kidney_injury(p, serious=True),
}


@cache
def routine_template(weeks: int) -> tuple[tuple[int, int], ...]:
    """(day, kind) of every routine observation, in time order."""
    horizon = weeks * 7
    entries = {(day, LABS) for day in LAB_DAYS if day <= horizon}
    entries |= {(day, VITALS) for day in range(min(28, horizon + 1))}  # daily in weeks 1-4
    entries |= {(day, VITALS) for day in range(28, horizon + 1, 7)}  # then weekly
    entries |= {(day, ASSESSMENT) for day in range(0, horizon + 1, 7)}
    return tuple(sorted(entries))


def _routine(enrolment: Enrolment, rng: Random, clock: Clock, weeks: int) -> Iterator[Task]:
    t0 = enrolment.randomised_at
    first_day = (t0 - clock.local_midnight(0)) // DAY
    rnd = rng.random
    midnight = clock.local_midnight(first_day)
    for order, (day, kind) in enumerate(routine_template(weeks)):
        if day == 0:
            low, high = _BASELINE_STEPS[kind]
            minute = t0 - 5 * (low + int(rnd() * (high - low + 1)))
        else:
            start, steps = _SLOTS[kind]
            minute = midnight + day * DAY + start + 5 * int(rnd() * (steps + 1))
        yield minute, order, kind, None


def _baseline_meld(course: Course, specs: tuple[LabSpec, ...]) -> int:
    """MELD from the baseline values as the site's laboratory reports them."""

    def reported(analyte: int, value: float) -> float:
        spec = specs[analyte]
        return spec.value(value) * spec.divisor

    return meld(
        reported(BILIRUBIN, course.bilirubin0),
        reported(INR, course.inr0),
        reported(CREATININE, course.creatinine0),
    )


def _procedures(p: Planner, clock: Clock, end: int) -> None:
    arm, rng = p.enrolment.arm, p.rng
    first_day = (p.t0 - clock.local_midnight(0)) // DAY
    if arm in {"C", "D"}:  # plasma exchange in the morning, 2000 mL FFP
        for number, day in enumerate(_PLASMA_EXCHANGE_DAYS, start=1):
            morning = clock.local_midnight(first_day + day) + 8 * HOUR + 30
            start = morning + 5 * rng.randint(0, 12)
            if start < end:
                ended = start + rng.randint(110, 150)
                exchange = Procedure("plasma_exchange", number, start, ended)
                p.procedure(exchange)
                p.lab(exchange.end + rng.randint(45, 75), "ionised_calcium")
    for number, day in enumerate(_INFUSION_DAYS.get(arm, ()), start=1):
        # In the afternoon: in arm D the first two follow that morning's exchange.
        start = clock.local_midnight(first_day + day) + 14 * HOUR + 5 * rng.randint(0, 18)
        if start < end:
            ended = start + 30 + rng.randint(-2, 3)  # peripheral IV over 30 minutes
            p.procedure(Procedure("uc_msc_infusion", number, start, ended))


def _fill(p: Planner, count: int) -> None:
    """Add `count` common non-serious AEs suited to the arm, without repeating a kind."""
    specials = set(p.enrolment.specials)
    options: list[tuple[float, Callable[[Planner], object]]] = [
        (weight, plan)
        for name, arms, weight, plan in comp.FILLERS
        if p.enrolment.arm in arms
        and not (name == "encephalopathy" and "he_serious" in specials)
        and not (name == "kidney_injury" and "aki_serious" in specials)
    ]
    for term, grade in BACKGROUND_TERMS:
        options.append((0.5, partial(comp.background, term=term, top_grade=grade)))
    for _ in range(min(count, len(options))):
        index = p.rng.choices(range(len(options)), [w for w, _ in options])[0]
        options.pop(index)[1](p)


def plan_participant(
    enrolment: Enrolment, ctx: FeedContext, *, order_base: int
) -> tuple[MeasurementEmitter, Iterator[Task]]:
    """Plan one participant: return its emitter and its tasks in clinical-time order.

    Rendering a task gives submissions sent at or after the task's clinical minute, which
    is what lets the feed merge participants lazily in arrival order. `order_base` orders
    this participant's submissions against others sent in the same minute.
    """
    rng = Random(enrolment.seed)
    t0 = enrolment.randomised_at
    horizon_end = t0 + ctx.weeks * 7 * DAY + DAY
    death_at = None if enrolment.death_day is None else t0 + int(enrolment.death_day * DAY)
    leave_at = (
        None if enrolment.withdrawal_day is None else t0 + int(enrolment.withdrawal_day * DAY)
    )
    end = min(x for x in (death_at, leave_at, horizon_end) if x is not None)
    course = Course(
        rng,
        randomised_at=t0,
        severity=enrolment.severity,
        sex=enrolment.sex,
        arm=enrolment.arm,
    )
    profile = profile_for(enrolment.site_index)
    specs = lab_specs(profile, enrolment.sex)
    course.cap_baseline(lambda c: _baseline_meld(c, specs))
    if death_at is not None:  # worsening starts 10-30 days before death
        start = max(death_at - int(rng.uniform(10, 30) * DAY), t0 + 2 * DAY)
        course.decline_until(rng, start, death_at)
    planner = Planner(enrolment, course, rng, ctx.clock, last_onset=end - 3 * DAY)
    _procedures(planner, ctx.clock, end)

    ending = None
    if death_at is not None and enrolment.death_cause is not None:
        fatal = comp.fatal_event(planner, enrolment.death_cause, death_at)
        ending = Ending("death", death_at, enrolment.death_cause, fatal)
    elif leave_at is not None and enrolment.withdrawal_reason is not None:
        ending = Ending("withdrawal", leave_at, enrolment.withdrawal_reason)
    for special in enrolment.specials:
        _SPECIALS[special](planner)
    wanted = rng.choices((1, 2, 3, 4, 5), (10, 30, 35, 20, 5))[0]
    _fill(planner, wanted - len(enrolment.specials) - (0 if death_at is None else 1))
    planner.add(t0, ENROLMENT, None)
    # Sites number AEs in the order they occur, not in the order they were planned here.
    for number, episode in enumerate(sorted(planner.episodes, key=lambda e: e.onset), start=1):
        episode.ref = f"{enrolment.participant_id}-AE{number:02d}"
    if ending is not None:
        planner.tasks.append(
            (ending.at, TERMINAL_ORDER, DEATH if ending.kind == "death" else WITHDRAWAL, ending)
        )

    emitter = MeasurementEmitter(
        enrolment,
        ctx,
        course,
        rng,
        profile,
        specs,
        enrolment_sent=t0 + rng.randint(1, 5),
        baseline_meld=_baseline_meld(course, specs),
        order_base=order_base,
    )
    tasks = heapq.merge(_routine(enrolment, rng, ctx.clock, ctx.weeks), sorted(planner.tasks))
    return emitter, _until(tasks, end)


def _until(tasks: Iterator[Task], end: int) -> Iterator[Task]:
    for task in tasks:
        if task[0] > end:
            return
        yield task
