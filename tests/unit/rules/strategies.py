"""Hypothesis strategies for the rules tests: plausible fact histories of a few participants.

Histories mix every fact type the catalogue reads: enrolment, UC-MSC / PE / transfusion /
vasopressor treatments, AEs with clinical terms (bleeds, HE, infections, reactions), lab
results and vital signs around the rule thresholds, and West Haven grades, recorded up to
three days late so the late-arrival paths run too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    Arm,
    Causality,
    ClinicalAssessmentRecorded,
    ClinicalFact,
    DeathRecorded,
    Expectedness,
    LabResultRecorded,
    Outcome,
    ParticipantEnrolled,
    SeriousnessCriterion,
    Treatment,
    TreatmentAdministered,
    VitalSignsRecorded,
)

from .factories import CANONICAL_UNITS, LOINC, SITE, T0, TRIAL, VITAL_UNITS, ae_payload

PARTICIPANTS = ("P-001", "P-002", "P-003")
AE_REFS = ("AE-1", "AE-2", "AE-3")
KINDS = (
    "enrolled",
    "treated",
    "ae_reported",
    "ae_updated",
    "died",
    "lab",
    "clinical_lab",
    "vitals",
    "west_haven",
)
#: Draw weights: clinical facts come more often, so windows and pairs happen in small histories.
WEIGHTED_KINDS = (*KINDS, "treated", "clinical_lab", "clinical_lab", "clinical_lab", "vitals")
#: Analytes drawn more often where a rule needs two results or a procedure nearby.
WEIGHTED_ANALYTES = ("hb", "hb", "hb", "ica", "ica", "platelets")
TERMS = (
    "Sepsis",
    "Oesophageal varices haemorrhage",
    "Melaena",
    "Hepatic encephalopathy",
    "Catheter related infection",
    "Pneumonia",
    "Chills",
    "Anaphylaxis",
    "Urticaria",
    "Paraesthesia",
    "Portal vein thrombosis",
    "Nausea",
)
#: Values around each rule threshold (canonical units).
LAB_VALUES: dict[str, tuple[float, ...]] = {
    "hb": (65.0, 70.0, 71.0, 73.0, 90.0, 100.0, 102.0, 120.0),
    "platelets": (45.0, 50.0, 120.0),
    "inr": (1.2, 2.5, 2.6),
    "wbc": (3.9, 4.0, 12.0, 12.5),
    "ammonia": (20.0, 60.0),
    "sodium": (122.0, 125.0, 138.0),
    "potassium": (3.0, 4.5),
    "ica": (0.75, 0.85, 0.95, 1.05, 1.2),
    "pct": (0.1, 0.5),
    "crp": (10.0, 25.0),
    "lactate": (1.5, 2.1),
    "culture": (0.0, 1.0),
    "neutrophils": (0.1, 0.25),
}
VITAL_VALUES: dict[str, tuple[float, ...]] = {
    "temperature": (35.9, 37.0, 38.0, 38.1, 39.5, 40.1),
    "heart_rate": (80.0, 90.0, 95.0, 125.0),
    "respiratory_rate": (16.0, 20.0, 22.0),
    "systolic_bp": (85.0, 100.0, 130.0),
    "mean_arterial_pressure": (60.0, 80.0),
    "spo2": (88.0, 97.0),
    "gcs": (13.0, 15.0),
    "urine_output": (0.3, 0.6),
}


@st.composite
def _envelope(draw: st.DrawFn) -> dict[str, Any]:
    # Half the facts crowd into 36 h so that procedure windows, Hb pairs and SIRS windows
    # overlap often; the rest spread over 5 days (episodes, lookbacks, quiet periods).
    minutes = st.integers(min_value=0, max_value=60 * 36) | st.integers(
        min_value=0, max_value=60 * 24 * 5
    )
    at = T0 + timedelta(minutes=draw(minutes))
    return {
        "event_id": draw(st.uuids()),
        "trial_id": TRIAL,
        "site_id": SITE,
        "participant_id": draw(st.sampled_from(PARTICIPANTS)),
        "occurred_at": at,
        "recorded_at": at + timedelta(minutes=draw(st.integers(min_value=0, max_value=60 * 72))),
        "source": "edc",
        "source_ref": f"ref-{draw(st.integers(min_value=0, max_value=10**9))}",
        "actor": "tester",
    }


@st.composite
def _ae(draw: st.DrawFn) -> dict[str, Any]:
    return ae_payload(
        draw(st.sampled_from(AE_REFS)),
        criteria=tuple(draw(st.sets(st.sampled_from(list(SeriousnessCriterion)), max_size=3))),
        grade=draw(st.integers(min_value=1, max_value=5)),
        planned=draw(st.booleans()),
        relatedness=draw(st.sampled_from(list(Causality))),
        expectedness=draw(st.sampled_from(list(Expectedness))),
        outcome=draw(st.sampled_from(list(Outcome))),
        awareness_at=draw(st.none() | st.just(T0 + timedelta(hours=1))),
        term=draw(st.sampled_from(TERMS)),
    )


@st.composite
def _treatment(draw: st.DrawFn, env: dict[str, Any]) -> TreatmentAdministered:
    treatment = draw(
        st.sampled_from([*Treatment, Treatment.PLASMA_EXCHANGE, Treatment.UC_MSC_INFUSION])
    )
    details: dict[str, Any] = {
        "treatment": treatment,
        "dose_cells_per_kg": 1e5,
        "volume_ml": 2000.0,
    }
    minutes = draw(st.none() | st.integers(min_value=0, max_value=240))
    if minutes is not None:
        details["ended_at"] = env["occurred_at"] + timedelta(minutes=minutes)
    return TreatmentAdministered(**env, payload=details)


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "normalised_value": value, "normalised_unit": unit}


@st.composite
def _clinical_lab(draw: st.DrawFn, env: dict[str, Any]) -> LabResultRecorded:
    analyte = draw(st.sampled_from((*sorted(LAB_VALUES), *WEIGHTED_ANALYTES)))
    loinc = LOINC[analyte]
    low = draw(st.none() | st.just(1.12)) if analyte == "ica" else None
    payload = {
        "loinc": loinc,
        "result": _quantity(draw(st.sampled_from(LAB_VALUES[analyte])), CANONICAL_UNITS[loinc]),
        "normalised_reference_low": low,
        "normalised_reference_high": 32.0 if analyte == "ammonia" else None,
        "specimen": "ascitic_fluid" if analyte == "neutrophils" else "serum",
    }
    return LabResultRecorded(**env, payload=payload)


@st.composite
def _vitals(draw: st.DrawFn, env: dict[str, Any]) -> VitalSignsRecorded:
    names = draw(st.sets(st.sampled_from(sorted(VITAL_VALUES)), min_size=1, max_size=4))
    observations = {
        name: _quantity(draw(st.sampled_from(VITAL_VALUES[name])), VITAL_UNITS[name])
        for name in sorted(names)
    }
    return VitalSignsRecorded(**env, payload={"observations": observations})


@st.composite
def facts(draw: st.DrawFn) -> ClinicalFact:  # noqa: PLR0911 - one branch per fact kind
    """One arriving fact of any kind the catalogue reads (plus one it ignores)."""
    env = draw(_envelope())
    kind = draw(st.sampled_from(WEIGHTED_KINDS))
    if kind == "enrolled":
        return ParticipantEnrolled(**env, payload={"arm": draw(st.sampled_from(list(Arm)))})
    if kind == "treated":
        return draw(_treatment(env))
    if kind in {"ae_reported", "ae_updated"}:
        model = AdverseEventReported if kind == "ae_reported" else AdverseEventUpdated
        return model(**env, payload=draw(_ae()))
    if kind == "died":
        return DeathRecorded(**env, payload={"cause_category": "unknown"})
    if kind == "clinical_lab":
        return draw(_clinical_lab(env))
    if kind == "vitals":
        return draw(_vitals(env))
    if kind == "west_haven":
        grade = draw(st.integers(min_value=0, max_value=4))
        return ClinicalAssessmentRecorded(**env, payload={"west_haven_grade": grade})
    return LabResultRecorded(
        **env, payload={"loinc": "1742-6", "result": {"value": 80.0, "unit": "U/L"}}
    )


@st.composite
def _scenario(draw: st.DrawFn) -> list[ClinicalFact]:
    """One participant's procedure followed within 30 h by results, vitals, grades and AEs."""
    pid = draw(st.sampled_from(PARTICIPANTS))
    anchor = T0 + timedelta(minutes=draw(st.integers(min_value=0, max_value=60 * 24 * 3)))

    def env(offset_minutes: int) -> dict[str, Any]:
        base = draw(_envelope())
        at = anchor + timedelta(minutes=offset_minutes)
        lag = base["recorded_at"] - base["occurred_at"]
        return {**base, "participant_id": pid, "occurred_at": at, "recorded_at": at + lag}

    offsets = st.integers(min_value=0, max_value=60 * 30)
    items: list[ClinicalFact] = [draw(_treatment(env(0)))]
    for kind in draw(
        st.lists(st.sampled_from(("lab", "lab", "vitals", "ae", "wh")), min_size=2, max_size=6)
    ):
        fact_env = env(draw(offsets))
        if kind == "lab":
            items.append(draw(_clinical_lab(fact_env)))
        elif kind == "vitals":
            items.append(draw(_vitals(fact_env)))
        elif kind == "ae":
            items.append(AdverseEventReported(**fact_env, payload=draw(_ae())))
        else:
            grade = draw(st.integers(min_value=0, max_value=4))
            items.append(
                ClinicalAssessmentRecorded(**fact_env, payload={"west_haven_grade": grade})
            )
    return items


@st.composite
def _histories(draw: st.DrawFn, max_size: int) -> list[ClinicalFact]:
    background = draw(st.lists(facts(), max_size=max_size))
    scenarios = [fact for scenario in draw(st.lists(_scenario(), max_size=2)) for fact in scenario]
    merged = draw(st.permutations([*background, *scenarios]))  # arrival order: late facts too
    return list({fact.event_id: fact for fact in merged}.values())


def fact_histories(max_size: int = 25) -> st.SearchStrategy[list[ClinicalFact]]:
    """Histories of up to `max_size` background facts plus up to two procedure scenarios,
    with unique event ids, in arrival order."""
    return _histories(max_size)
