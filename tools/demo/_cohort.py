"""Trial-level plan of the demo cohort: who, where, which arm, which fate (demo tooling).

Everything a participant's own stream needs from the trial as a whole is decided here, up
front and cheaply, from one seeded `random.Random`: randomisation time, site, arm (permuted
blocks of four, so 120 participants give exactly 30 per arm), severity, death, withdrawal and
the serious adverse events the feed must contain. Each participant also gets a seed of its own,
so its detailed history can be generated lazily and in any interleaving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from random import Random
from typing import Final

from tools.demo._clock import Clock

ARMS: Final = ("A", "B", "C", "D")
ENROLMENT_DAYS: Final = 182.0
DEATH_CAUSES: Final = (("liver_failure", 0.6), ("infection", 0.25), ("bleeding", 0.15))
WITHDRAWAL_REASONS: Final = ("consent_withdrawn", "lost_to_follow_up", "investigator_decision")
# Serious AEs in participants who survive, as expected counts per participant enrolled.
_SERIOUS_RATES: Final = (
    ("vb", 0.025),
    ("he_serious", 0.015),
    ("infection_serious", 0.02),
    ("aki_serious", 0.01),
)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the trial-level plan fixes about one participant."""

    number: int
    participant_id: str
    site_id: str
    site_index: int
    arm: str
    randomised_at: int  # minutes after the feed start
    severity: float  # 0..1, drives baseline bilirubin, INR and the risk of dying
    sex: str
    death_day: float | None
    death_cause: str | None
    withdrawal_day: float | None
    withdrawal_reason: str | None
    specials: tuple[str, ...]  # serious adverse events this participant must have
    late_sponsor_report: bool  # one SAE report reaches the sponsor after the 24 h clock
    seed: int


def _stochastic_round(value: float, rng: Random) -> int:
    return math.floor(value + rng.random())


def _weighted_sample(rng: Random, items: list[int], weights: list[float], k: int) -> list[int]:
    """Sample k items without replacement (Efraimidis-Spirakis keys), in a stable order."""
    keyed = sorted(
        ((rng.random() ** (1.0 / w), i) for i, w in zip(items, weights, strict=True)), reverse=True
    )
    return sorted(i for _, i in keyed[:k])


def plan_cohort(
    *,
    seed: int,
    participants: int,
    sites: tuple[str, ...],
    weeks: int,
    clock: Clock,
    first_number: int = 1,
) -> list[Enrolment]:
    """Plan the cohort, in randomisation order."""
    if participants < 1 or not sites or weeks < 1:
        msg = "participants, sites and weeks must be positive"
        raise ValueError(msg)
    rng = Random(seed)
    horizon = weeks * 7.0
    days = sorted(int(rng.uniform(0, ENROLMENT_DAYS)) for _ in range(participants))
    # Randomised during the working day, 09:00-15:55 Asia/Shanghai, on a 5-minute grid.
    times = sorted(clock.local_midnight(day) + 5 * rng.randint(108, 191) for day in days)
    site_of = [i % len(sites) for i in range(participants)]
    rng.shuffle(site_of)
    arms: list[str] = []
    while len(arms) < participants:
        block = list(ARMS)
        rng.shuffle(block)
        arms.extend(block)
    severity = [rng.random() for _ in range(participants)]
    sexes = ["M" if rng.random() < 0.82 else "F" for _ in range(participants)]
    everyone = list(range(participants))

    dying: dict[int, tuple[float, str]] = {}
    if horizon >= 21:
        n_deaths = min(round(participants * rng.uniform(0.07, 0.095)), participants)
        weights = [(0.3 + severity[i]) * (1.3 if arms[i] == "A" else 1.0) for i in everyone]
        for i in _weighted_sample(rng, everyone, weights, n_deaths):
            # Most deaths in ACLF come within 12 weeks; a shorter follow-up misses the rest.
            day = rng.uniform(10, 84) if rng.random() < 0.7 else rng.uniform(85, 330)
            cause = rng.choices([c for c, _ in DEATH_CAUSES], [w for _, w in DEATH_CAUSES])[0]
            if day <= horizon - 2:
                dying[i] = (day, cause)

    survivors = [i for i in everyone if i not in dying]
    withdrawn: dict[int, tuple[float, str]] = {}
    if horizon >= 42:
        n_withdrawn = min(_stochastic_round(participants * 0.025, rng), len(survivors))
        for i in sorted(rng.sample(survivors, n_withdrawn)):
            withdrawn[i] = (rng.uniform(28, horizon - 7), rng.choice(WITHDRAWAL_REASONS))

    pool = [i for i in survivors if i not in withdrawn]
    rng.shuffle(pool)
    specials: dict[int, list[str]] = {}
    per_120 = max(1, round(participants / 120))
    msc_pool = [i for i in pool if arms[i] in {"B", "D"}]
    for n in range(min(per_120, len(msc_pool))):
        specials.setdefault(msc_pool[n], []).append(
            "susar_thrombosis" if n % 2 == 0 else "susar_sepsis"
        )
    pool = [i for i in pool if i not in specials]
    wanted = [("upgrade", per_120)]
    wanted += [
        (kind, max(1, _stochastic_round(participants * rate, rng))) for kind, rate in _SERIOUS_RATES
    ]
    for kind, count in wanted:
        for _ in range(count):
            if pool:
                specials.setdefault(pool.pop(), []).append(kind)
    late = min((i for i, kinds in specials.items() if "he_serious" in kinds), default=None)

    width = max(3, len(str(first_number + participants - 1)))
    plan = []
    for i in everyone:
        number = first_number + i
        death = dying.get(i)
        leave = withdrawn.get(i)
        plan.append(
            Enrolment(
                number=number,
                participant_id=f"P-{number:0{width}d}",
                site_id=sites[site_of[i]],
                site_index=site_of[i],
                arm=arms[i],
                randomised_at=times[i],
                severity=severity[i],
                sex=sexes[i],
                death_day=death[0] if death else None,
                death_cause=death[1] if death else None,
                withdrawal_day=leave[0] if leave else None,
                withdrawal_reason=leave[1] if leave else None,
                specials=tuple(specials.get(i, ())),
                late_sponsor_report=i == late,
                seed=rng.getrandbits(64),
            )
        )
    return plan
