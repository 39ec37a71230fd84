"""Procedure reactions and infections of the demo feed, with their observations (demo tooling).

Each episode is built so the observations exercise the rule it is meant for (RULES.md §4):
fever within 24 h of a UC-MSC infusion, infections with a temperature >= 38.0 °C within 7 days
after an infusion or 72 h after a plasma exchange, citrate paraesthesia with a low ionised
calcium, and one SUSAR candidate (RULES.md SAE-04).
"""

from __future__ import annotations

from typing import Final

from tools.demo._clock import DAY, HOUR
from tools.demo._codes import LLT_CODES, WBC
from tools.demo._planner import Planner
from tools.demo._tasks import Procedure

HOSPITALISED: Final = ("hospitalisation",)
LIFE_THREATENING: Final = ("hospitalisation", "life_threatening")


def llt_code(term: str) -> str | None:
    """Return the CTCAE LLT code of a term, if RULES.md §0.6 lists one."""
    return LLT_CODES.get(term)


def _pick(p: Planner, kind: str) -> Procedure | None:
    done = [x for x in p.procedures if x.kind == kind and x.start < p.last_onset]
    return p.rng.choice(done) if done else None


def random_onset(p: Planner, first_day: float, last_day: float) -> int:
    """Pick an onset between two study days, no later than the participant's last onset."""
    latest = min(p.t0 + int(last_day * DAY), p.last_onset)
    earliest = p.t0 + int(first_day * DAY)
    return p.rng.randint(earliest, max(earliest, latest))


def _infection_onset(p: Planner) -> int:
    """Within 7 days after a UC-MSC infusion, or 72 h after a plasma exchange, if any."""
    randint = p.rng.randint
    options = [x for x in p.procedures if x.kind != "rbc_transfusion" and x.start < p.last_onset]
    if not options:
        return random_onset(p, 3, 60)
    procedure = p.rng.choice(options)
    if procedure.kind == "uc_msc_infusion":
        return procedure.start + randint(2 * DAY, 6 * DAY)
    return procedure.start + randint(24 * HOUR, 66 * HOUR)


def _febrile(
    p: Planner, onset: int, *, peak: float, wbc: float, days: float, culture: bool | None
) -> None:
    """Fever and leucocytosis from onset, observed at once; optionally a blood culture."""
    p.course.mods.fever.append((onset, onset + int(days * DAY), peak))
    p.course.mods.wbc.append((onset - 6 * HOUR, onset + int((days + 2) * DAY), wbc))
    p.vitals(onset)
    p.lab(onset + p.rng.randint(20, 90), WBC)
    if culture is not None:
        p.culture(onset + p.rng.randint(15, 60), positive=culture)


def _culture(p: Planner, taken: float, positive: float) -> bool | None:
    """Whether a blood culture is taken (None if not) and grows an organism."""
    if p.rng.random() >= taken:
        return None
    return p.rng.random() < positive


def sepsis_signs(p: Planner, onset: int, *, days: float) -> None:
    """Add high fever, hypotension, tachycardia, leucocytosis and a positive culture."""
    p.course.mods.systolic_drop.append((onset, onset + int(1.5 * DAY), p.rng.uniform(28, 40)))
    p.course.mods.heart_rate.append((onset, onset + int(2 * DAY), p.rng.uniform(15, 25)))
    _febrile(
        p,
        onset,
        peak=round(p.rng.uniform(38.8, 39.8), 1),
        wbc=p.rng.uniform(8, 14),
        days=days,
        culture=True,
    )


def fever_after_infusion(p: Planner) -> bool:
    """Fever within 24 h of a UC-MSC infusion (RULES.md IR-MSC-01, INF-01)."""
    infusion = _pick(p, "uc_msc_infusion")
    if infusion is None:
        return False
    onset = infusion.end + p.rng.randint(60, 6 * HOUR)
    if not p.fits(onset):
        return False
    peak = round(p.rng.uniform(38.0, 38.8), 1)
    p.course.mods.fever.append((onset, onset + p.rng.randint(8 * HOUR, 20 * HOUR), peak))
    p.vitals(onset)
    p.report(
        "Fever",
        onset,
        1,
        p.related("probable", "unlikely"),
        llt=llt_code("Fever"),
        lasts=p.rng.randint(12 * HOUR, 30 * HOUR),
    )
    return True


def infusion_reaction(p: Planner) -> bool:
    """Infusion-related reaction during or just after a UC-MSC infusion (IR-MSC-01)."""
    infusion = _pick(p, "uc_msc_infusion")
    if infusion is None or not p.fits(infusion.start + 40):
        return False
    onset = infusion.start + p.rng.randint(10, 40)
    p.course.mods.heart_rate.append((onset, onset + 3 * HOUR, 22.0))
    p.course.mods.fever.append((onset, onset + 4 * HOUR, 37.8))
    p.vitals(onset + 5)
    term = "Infusion related reaction"
    p.report(
        term,
        onset,
        p.rng.choice((1, 2)),
        p.related(p.rng.choice(("probable", "definite")), "unlikely"),
        llt=llt_code(term),
        lasts=p.rng.randint(2 * HOUR, 8 * HOUR),
    )
    return True


def citrate_paraesthesia(p: Planner) -> bool:
    """Perioral paraesthesia from citrate during plasma exchange, low ionised Ca (PE-01)."""
    exchange = _pick(p, "plasma_exchange")
    if exchange is None or not p.fits(exchange.start + 110):
        return False
    onset = exchange.start + p.rng.randint(60, 110)
    p.lab(onset + p.rng.randint(5, 15), "ionised_calcium", round(p.rng.uniform(0.92, 0.99), 2))
    p.report(
        "Paresthesia",
        onset,
        1,
        p.related("not_related", "definite"),
        llt=llt_code("Paresthesia"),
        lasts=p.rng.randint(HOUR, 4 * HOUR),
    )
    return True


def plasma_urticaria(p: Planner) -> bool:
    """Urticaria from the fresh frozen plasma during an exchange (PE-03)."""
    exchange = _pick(p, "plasma_exchange")
    if exchange is None or not p.fits(exchange.start + 100):
        return False
    onset = exchange.start + p.rng.randint(30, 100)
    p.report(
        "Urticaria",
        onset,
        p.rng.choice((1, 2)),
        p.related("not_related", "probable"),
        llt=llt_code("Urticaria"),
        lasts=p.rng.randint(6 * HOUR, 24 * HOUR),
    )
    return True


def catheter_infection(p: Planner) -> bool:
    """Apheresis catheter infection within 72 h of a plasma exchange (INF-07, INF-08)."""
    exchange = _pick(p, "plasma_exchange")
    if exchange is None:
        return False
    onset = exchange.start + p.rng.randint(24 * HOUR, 66 * HOUR)
    if not p.fits(onset):
        return False
    _febrile(
        p,
        onset,
        peak=round(p.rng.uniform(38.2, 39.0), 1),
        wbc=p.rng.uniform(4, 7),
        days=2.5,
        culture=_culture(p, 0.5, 0.3),
    )
    term = "Catheter related infection"
    p.report(
        term,
        onset,
        2,
        p.related("unlikely", "probable"),
        llt=llt_code(term),
        lasts=p.rng.randint(5 * DAY, 10 * DAY),
    )
    return True


def infection(p: Planner, *, serious: bool = False, upgrade: bool = False) -> bool:
    """Lung, urinary or peritoneal infection; after a procedure when the arm has one."""
    onset = _infection_onset(p)
    if not p.fits(onset):
        return False
    rng = p.rng
    related = p.related("unlikely", "unlikely")
    if serious and rng.random() < 0.5:
        sepsis_signs(p, onset, days=3)
        p.report(
            "Sepsis",
            onset,
            4,
            related,
            llt=llt_code("Sepsis"),
            seriousness=LIFE_THREATENING,
            lasts=rng.randint(10 * DAY, 20 * DAY),
        )
        return True
    term = (
        "Peritoneal infection"
        if serious
        else rng.choice(("Lung infection", "Urinary tract infection"))
    )
    _febrile(
        p,
        onset,
        peak=round(rng.uniform(38.1, 39.0), 1),
        wbc=rng.uniform(4, 9),
        days=2.5,
        culture=_culture(p, 0.4, 0.25),
    )
    if upgrade:  # first non-serious, admitted two to three days later
        change = (rng.randint(2 * DAY, 3 * DAY), 3, HOSPITALISED)
        p.report(
            "Lung infection",
            onset,
            2,
            related,
            upgrade=change,
            lasts=rng.randint(10 * DAY, 16 * DAY),
        )
    else:
        p.report(
            term,
            onset,
            3 if serious else 2,
            related,
            llt=llt_code(term),
            seriousness=HOSPITALISED if serious else (),
            lasts=rng.randint(7 * DAY, 14 * DAY),
        )
    return True


def susar(p: Planner, *, sepsis: bool) -> bool:
    """Plan a SUSAR candidate: serious, possibly related to UC-MSC, unexpected (SAE-04)."""
    infusion = _pick(p, "uc_msc_infusion")
    if infusion is None:
        return False
    onset = infusion.start + p.rng.randint(2 * DAY, 6 * DAY)
    if not p.fits(onset):
        return False
    related = p.related("possible", "unlikely")
    if sepsis:
        sepsis_signs(p, onset, days=3)
        p.report(
            "Sepsis",
            onset,
            4,
            related,
            llt=llt_code("Sepsis"),
            expectedness="unexpected",
            seriousness=LIFE_THREATENING,
            lasts=p.rng.randint(12 * DAY, 20 * DAY),
        )
    else:  # thromboembolism is the rare serious MSC event in the literature (IR-MSC-03);
        # grade 4 and related within 7 days of the infusion, it is also the STOP-03 sentinel
        # event the demo shows (a pause of procedures in the arm pending DSMB review).
        p.report(
            "Thromboembolic event",
            onset,
            4,
            related,
            expectedness="unexpected",
            seriousness=LIFE_THREATENING,
            lasts=p.rng.randint(14 * DAY, 28 * DAY),
        )
    return True
