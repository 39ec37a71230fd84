"""Complications of ACLF in the demo feed, with their observations, and fatal events (demo tooling).

Each episode is built so the observations exercise the rule it is meant for (RULES.md §1-§6):
hepatic encephalopathy comes with a West Haven >= 2 assessment, variceal bleeding with a
haemoglobin fall of >= 30 g/L within 24 h before any transfusion, acute kidney injury with a
creatinine rise of >= 26.5 umol/L within 48 h; a death with the fatal AE that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from tools.demo._clock import DAY, HOUR
from tools.demo._codes import AMMONIA, CREATININE, HB
from tools.demo._episodes import (
    HOSPITALISED,
    LIFE_THREATENING,
    catheter_infection,
    citrate_paraesthesia,
    fever_after_infusion,
    infection,
    infusion_reaction,
    llt_code,
    plasma_urticaria,
    random_onset,
    sepsis_signs,
)
from tools.demo._planner import Planner
from tools.demo._tasks import Episode

VARICEAL_BLEEDING: Final = "Oesophageal varices haemorrhage"


def encephalopathy(p: Planner, *, grade: int) -> bool:
    """Overt hepatic encephalopathy with a matching West Haven assessment (HE-01, HE-03)."""
    onset = random_onset(p, 5, 90)
    if not p.fits(onset):
        return False
    days = p.rng.uniform(3, 7) if grade == 2 else p.rng.uniform(5, 10)
    p.course.mods.west_haven.append((onset - 2 * HOUR, onset + int(days * DAY), grade))
    p.course.mods.ammonia.append(
        (onset - 12 * HOUR, onset + int(days * DAY), p.rng.uniform(60, 110))
    )
    p.assessment(onset + p.rng.randint(HOUR, 3 * HOUR))
    p.lab(onset + p.rng.randint(30, 90), AMMONIA)
    p.report(
        "Hepatic encephalopathy",
        onset,
        grade,
        p.related("not_related", "not_related"),
        seriousness=HOSPITALISED if grade >= 3 else (),
        lasts=int(days * DAY),
    )
    return True


def kidney_injury(p: Planner, *, serious: bool) -> bool:
    """Creatinine rise >= 26.5 umol/L within 48 h (KDIGO; RULES.md AKI-01)."""
    onset = random_onset(p, 5, 90)
    if not p.fits(onset) or onset - 40 * HOUR <= p.t0:
        return False
    rise = p.rng.uniform(130, 220) if serious else p.rng.uniform(34, 50)
    days = p.rng.uniform(10, 20) if serious else p.rng.uniform(4, 8)
    p.course.mods.creatinine.append((onset, onset + int(days * DAY), rise))
    p.lab(onset - p.rng.randint(28 * HOUR, 40 * HOUR), CREATININE)
    p.lab(onset, CREATININE)
    p.lab(onset + p.rng.randint(2 * DAY, 3 * DAY), CREATININE)
    # CTCAE v5 grades "Acute kidney injury" from 3 up; a KDIGO stage 1 rise is reported
    # as "Creatinine increased".
    if serious:
        term = "Acute kidney injury"
        p.report(
            term,
            onset,
            3,
            p.related("not_related", "unlikely"),
            llt=llt_code(term),
            seriousness=("prolonged_hospitalisation",),
            lasts=int(days * DAY),
        )
    else:
        p.report(
            "Creatinine increased",
            onset,
            1,
            p.related("not_related", "not_related"),
            lasts=int(days * DAY),
        )
    return True


def variceal_bleeding(
    p: Planner, onset: int | None = None, *, fatal: bool = False
) -> Episode | None:
    """Oesophageal variceal haemorrhage, Hb down >= 30 g/L within 24 h untransfused (VB-01/02)."""
    rng = p.rng
    onset = random_onset(p, 5, 150) if onset is None else onset
    if not fatal and not p.fits(onset):
        return None
    drop = min(rng.uniform(40, 55) if fatal else rng.uniform(33, 48), p.course.hb0 - 55)
    p.course.mods.haemoglobin.append((onset, drop))
    p.course.mods.heart_rate.append((onset, onset + 12 * HOUR, rng.uniform(20, 30)))
    p.course.mods.systolic_drop.append((onset, onset + 12 * HOUR, rng.uniform(15, 25)))
    p.vitals(onset + rng.randint(5, 20))
    first = onset + rng.randint(20, 40)  # before the drop shows: haemodilution takes hours
    second = first + rng.randint(10 * HOUR, 20 * HOUR)
    p.lab(first, HB)
    p.lab(second, HB)
    p.transfusion(second + rng.randint(40, 90))
    return p.report(
        VARICEAL_BLEEDING,
        onset,
        4 if fatal else 3,
        p.related("not_related", "not_related"),
        llt=llt_code(VARICEAL_BLEEDING),
        seriousness=LIFE_THREATENING if fatal or rng.random() < 0.3 else HOSPITALISED,
        lasts=None if fatal else rng.randint(8 * DAY, 15 * DAY),
    )


def background(p: Planner, *, term: str, top_grade: int) -> bool:
    """Plan a common non-serious AE of ACLF, unrelated to the procedures."""
    onset = random_onset(p, 1, 180)
    if not p.fits(onset):
        return False
    related = p.related(p.rng.choice(("not_related", "unlikely")), "not_related")
    p.report(
        term,
        onset,
        p.rng.randint(1, top_grade),
        related,
        lasts=p.rng.randint(2 * DAY, 30 * DAY) if p.rng.random() < 0.85 else None,
    )
    return True


#: Non-serious AE kinds by arm eligibility: (name, arms, weight, planner).
FILLERS: Final[tuple[tuple[str, str, float, Callable[[Planner], bool]], ...]] = (
    ("fever_after_infusion", "BD", 2.0, fever_after_infusion),
    ("infusion_reaction", "BD", 0.8, infusion_reaction),
    ("citrate_paraesthesia", "CD", 2.0, citrate_paraesthesia),
    ("plasma_urticaria", "CD", 0.8, plasma_urticaria),
    ("catheter_infection", "CD", 0.6, catheter_infection),
    ("infection", "ABCD", 1.5, infection),
    ("encephalopathy", "ABCD", 0.6, lambda p: encephalopathy(p, grade=2)),
    ("kidney_injury", "ABCD", 0.7, lambda p: kidney_injury(p, serious=False)),
)


def fatal_event(p: Planner, cause: str, death_at: int) -> Episode:
    """Plan the AE that leads to death: serious at first, fatal at death (SAE-03)."""
    rng = p.rng
    earliest = p.t0 + 12 * HOUR
    episode = _fatal_episode(p, cause, death_at, earliest)
    # Admitted: bloods on admission, then every two to three days until death.
    minute = episode.onset + rng.randint(HOUR, 3 * HOUR)
    while minute < death_at - 12 * HOUR:
        p.panel(minute)
        minute += rng.randint(2 * DAY, 3 * DAY)
    return episode


def _fatal_episode(p: Planner, cause: str, death_at: int, earliest: int) -> Episode:
    rng = p.rng
    if cause == "bleeding":
        onset = max(death_at - rng.randint(2 * DAY, 4 * DAY), earliest)
        episode = variceal_bleeding(p, onset, fatal=True)
        assert episode is not None  # noqa: S101 - a fatal bleed is always planned
        return episode
    if cause == "infection":
        onset = max(death_at - rng.randint(2 * DAY, 7 * DAY), earliest)
        sepsis_signs(p, onset, days=(death_at - onset) / DAY)
        return p.report(
            "Sepsis",
            onset,
            4,
            p.related("not_related", "not_related"),
            llt=llt_code("Sepsis"),
            seriousness=LIFE_THREATENING,
        )
    onset = max(death_at - rng.randint(4 * DAY, 14 * DAY), earliest)
    # Grade 3 encephalopathy in the last days: brain failure of CLIF-C OF (RULES.md LFP-03).
    p.course.mods.west_haven.append((death_at - 2 * DAY, death_at, 3))
    p.assessment(death_at - rng.randint(20 * HOUR, 40 * HOUR))
    return p.report(
        "Hepatic failure",
        onset,
        4,
        p.related("not_related", "not_related"),
        llt=llt_code("Hepatic failure"),
        seriousness=LIFE_THREATENING,
    )
