"""INF-03 qSOFA / septic shock screen (core layer, one rule).

Source: RULES.md §4.2-4.3 INF-03 (Sepsis-3, Singer JAMA 2016): qSOFA >= 2 of respiratory
rate >= 22/min, systolic BP <= 100 mmHg and altered mentation (GCS < 15, or a new West Haven
grade >= 2 after a grade < 2 or none) within one 24 h window [DC], or septic-shock criteria
(vasopressor started and lactate > 2 mmol/L within 24 h) -> "sepsis screen positive". HE
confounds altered mentation. U0 to investigator and safety officer; tagged with a UC-MSC or
PE it follows within W_INF_MSC / W_INF_PE (INF-07). Episodes: family "INF-03" (qSOFA level 1,
shock level 2).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from schemas import ClinicalFact, SignalRaised, TreatmentAdministered, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules import _he
from services.rules.core.rules._alerting import (
    INV_SO,
    Finding,
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._infection import Criteria, Hit, around_in, best_window, hits
from services.rules.core.rules._procedures import VASOPRESSOR, infection_tag
from services.rules.core.rules._triggers import TREATMENT, on
from services.rules.core.state import Observation, ParticipantState

RULE_ID: Final = "INF-03"
RULE_VERSION: Final = 1
KINDS: Final = ("rr", "sbp", "gcs", "wh", "lactate")
MINIMUM: Final = 2
SHOCK: Final = 2  # episode level of septic shock (qSOFA is 1)


#: A vasopressor (a treatment fact) or a new qSOFA / shock observation (`fresh`).
TRIGGERS: Final = on(*TREATMENT, kinds=KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise INF-03 when a new observation completes qSOFA >= 2 or septic shock."""
    pressor = (
        isinstance(fact, TreatmentAdministered) and fact.payload.treatment.value == VASOPRESSOR
    )
    observed = fresh(state, fact, *KINDS)
    if not pressor and not observed:
        return state, ()
    qsofa, shock = _criteria(state, config)
    vasopressors = tuple(
        Observation("vasopressor", p.started_at, 1.0, p.event_id)
        for p in state.procedures
        if p.treatment == VASOPRESSOR
    )
    # The pool is the KINDS history, then the vasopressors; its members from this fact are
    # what `fresh` found (a fact's observations all carry its clinical time, a correction's
    # are looked up whole) and its vasopressor, compared by integer id: the same test as
    # UUID `==` without a Python-level `__eq__` per item.
    target = fact.event_id.int
    new = [*observed, *(v for v in vasopressors if v.event_id.int == target)]
    span = hours(config.infection.qsofa_window_hours)
    found: list[tuple[int, list[Hit]]] = []
    for level, tests in ((SHOCK, shock), (1, qsofa)):
        # The candidates once per level, near the new hits only (for speed): the criteria
        # are pure, so this is what testing the whole pool for every new hit found.
        fresh_hits = hits(new, tests)
        if not fresh_hits:  # no window can hold a new hit: nothing to look around for
            continue
        candidates = hits(_around(state, vasopressors, fresh_hits, span), tests)
        windows = [best_window(candidates, hit, span) for hit in fresh_hits]
        best = max(windows, key=len, default=[])
        if len(best) >= MINIMUM:
            found.append((level, best))
    if not found:
        return state, ()
    level, window = found[0]
    at = max(o.at for _, o in window)
    state, fire = note_episode(state, fact, family=RULE_ID, at=at, level=level, config=config)
    if not fire:
        return state, ()
    return state, (emit(state, fact, _finding(state, fact, window, level=level, config=config)),)


def _around(
    state: ParticipantState,
    vasopressors: tuple[Observation, ...],
    new: list[Hit],
    span: timedelta,
) -> list[Observation]:
    """`around_in` of the pool: the KINDS history, then the vasopressors, near `new`."""
    if not new:
        return []
    first = min(o.at for _, o in new) - span
    last = max(o.at for _, o in new) + span
    pressors = [v for v in vasopressors if first <= v.at <= last]
    return [*around_in(state, KINDS, new, span), *pressors]


def _criteria(state: ParticipantState, config: TrialConfig) -> tuple[Criteria, Criteria]:
    c = config.infection

    def new_overt_he(o: Observation) -> bool:
        prior = _he.previous(state, o)
        return o.value >= _he.OVERT and (prior is None or prior.value < _he.OVERT)

    qsofa: Criteria = {
        "respiratory_rate": (
            ("rr",),
            lambda o: o.kind == "rr" and o.value >= c.qsofa_respiratory_rate,
        ),
        "systolic_bp": (("sbp",), lambda o: o.kind == "sbp" and o.value <= c.qsofa_systolic_bp),
        "altered_mentation": (
            ("gcs", "wh"),
            lambda o: (
                (o.kind == "gcs" and o.value < c.qsofa_gcs_normal)
                or (o.kind == "wh" and new_overt_he(o))
            ),
        ),
    }
    shock: Criteria = {
        "vasopressor": (("vasopressor",), lambda o: o.kind == "vasopressor"),
        "lactate": (
            ("lactate",),
            lambda o: o.kind == "lactate" and o.value > c.shock_lactate_mmol_l,
        ),
    }
    return qsofa, shock


def _finding(
    state: ParticipantState,
    fact: ClinicalFact,
    window: list[Hit],
    *,
    level: int,
    config: TrialConfig,
) -> Finding:
    at = max(o.at for _, o in window)
    tag, procedure = infection_tag(state, at, config)
    shown = ", ".join(
        f"{name} {o.value:g}" if name != "vasopressor" else name for name, o in window
    )
    what = "septic-shock criteria" if level == SHOCK else f"qSOFA {len(window)}"
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "infection",
        "Sepsis screen positive",
        Urgency.U0,
        INV_SO,
        f"{what} within 24 h ({shown}); HE can confound altered mentation",
        (*(o.event_id for _, o in window), *(() if procedure is None else (procedure.event_id,))),
        {
            "qsofa_score": None if level == SHOCK else len(window),
            "criteria": ",".join(name for name, _ in window),
            "septic_shock": level == SHOCK,
            "arm": state.arm,
            **tag,
            **late_values(fact, config),
        },
        (fact.event_id,),
    )
