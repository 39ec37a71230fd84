"""FHIR Observation (lab result or vital signs) to events (pure)."""

from __future__ import annotations

from typing import Any, Final

from safetymon.importers._types import Mapped, MappingError
from safetymon.importers.fhir._common import (
    LOINC,
    SNOMED,
    FhirSettings,
    Resource,
    codes,
    effective,
    envelope,
    quantity,
    who,
)
from safetymon.importers.sdtm import LB_LOINC

#: LOINC -> vital sign of the contract (RULES.md §0.5; SpO2 by both of its codes).
VITAL_LOINC: Final = {
    "8310-5": "temperature",
    "8867-4": "heart_rate",
    "9279-1": "respiratory_rate",
    "8480-6": "systolic_bp",
    "8462-4": "diastolic_bp",
    "8478-0": "mean_arterial_pressure",
    "59408-5": "spo2",
    "2708-6": "spo2",
    "9269-2": "gcs",
}
BLOOD_PRESSURE_PANEL: Final = "85354-9"
#: Blood culture, whole set or one bottle (aerobe, anaerobe): all land as RULES.md's 600-7.
CULTURE_LOINC: Final = frozenset({"600-7", "17928-3", "17934-1"})
#: The lab LOINC codes RULES.md §0.5 lists (those safetymon monitors), blood culture included.
LAB_LOINC: Final = frozenset(code for pair in LB_LOINC.values() for code in pair) | CULTURE_LOINC
#: SNOMED CT qualifiers that say a culture grew nothing.
NO_GROWTH: Final = frozenset({"264868006", "260385009", "260415000"})  # no growth, neg., not det.
#: SNOMED CT qualifiers that say "positive" without naming what grew.
_POSITIVE_ONLY: Final = frozenset({"10828004", "260373001"})  # positive, detected
_BLOOD: Final = frozenset({"718-7", "4544-3", "6690-2", "751-8", "777-3", "6301-6", "5902-2"})
_RESULT_STATUSES: Final = frozenset({"final", "amended", "corrected", "preliminary"})


class NotMonitoredError(MappingError):
    """A well-formed resource safetymon has no contract for (reported as skipped)."""


def map_observation(resource: Resource, settings: FhirSettings, *, record: str) -> Mapped:
    """A vital sign (or blood-pressure panel) or a monitored lab result, by LOINC code."""
    status = resource.get("status")
    if status not in _RESULT_STATUSES:
        raise NotMonitoredError("status", f"status {status!r}: not a result to act on")
    loinc = [code for system, code in codes(resource.get("code")) if system == LOINC]
    if not loinc:
        raise MappingError("code", "no LOINC coding (a local code alone cannot be matched)")
    sign = next((VITAL_LOINC[c] for c in loinc if c in VITAL_LOINC), None)
    if BLOOD_PRESSURE_PANEL in loinc or sign is not None:
        return _vitals(resource, settings, record=record, sign=sign)
    lab = next((c for c in loinc if c in LAB_LOINC), None)
    if lab is None:
        raise NotMonitoredError("code", f"LOINC {', '.join(loinc)} is not a monitored lab")
    return _lab(resource, settings, record=record, loinc=lab)


def _vitals(resource: Resource, settings: FhirSettings, *, record: str, sign: str | None) -> Mapped:
    observations: dict[str, Any] = {}
    if sign is not None and resource.get("valueQuantity"):
        observations[sign] = quantity(resource["valueQuantity"], "valueQuantity")
    for index, component in enumerate(resource.get("component", [])):
        part = next(
            (
                VITAL_LOINC[c]
                for s, c in codes(component.get("code"))
                if s == LOINC and c in VITAL_LOINC
            ),
            None,
        )
        if part is not None and part not in observations:
            observations[part] = quantity(
                component.get("valueQuantity"), f"component[{index}].valueQuantity"
            )
    if not observations:
        raise MappingError("valueQuantity", "no vital sign value")
    occurred, reported = effective(resource, settings)
    submission = envelope(
        settings,
        event_type="vital_signs_recorded",
        who_=who(resource, settings),
        occurred_at=occurred,
        source_ref=f"Observation/{resource.get('id')}",
        payload={"observations": observations, "occurred_at_as_reported": reported},
    )
    return Mapped(record, submission, "Observation:vital_signs")


def _lab(resource: Resource, settings: FhirSettings, *, record: str, loinc: str) -> Mapped:
    if loinc in CULTURE_LOINC:
        loinc = "600-7"
    if resource.get("valueCodeableConcept") is not None:
        return _culture(resource, settings, record=record, loinc=loinc)
    result = quantity(resource.get("valueQuantity"), "valueQuantity")
    payload: dict[str, Any] = {
        "loinc": loinc,
        "result": result,
        "specimen": "blood" if loinc in _BLOOD else "serum",
    }
    ranges: list[Resource] = list(resource.get("referenceRange", []))
    unit = resource["valueQuantity"].get("code")
    for bound in ("low", "high"):
        limit: Resource = ranges[0].get(bound) or {} if ranges else {}
        # A limit in another unit than the result would be stored under the wrong unit.
        if limit.get("value") is not None and limit.get("code") == unit:
            payload[f"reference_{bound}"] = float(limit["value"])
    occurred, payload["occurred_at_as_reported"] = effective(resource, settings)
    submission = envelope(
        settings,
        event_type="lab_result_recorded",
        who_=who(resource, settings),
        occurred_at=occurred,
        source_ref=f"Observation/{resource.get('id')}",
        payload=payload,
    )
    return Mapped(record, submission, f"Observation:lab:{loinc}")


def _culture(resource: Resource, settings: FhirSettings, *, record: str, loinc: str) -> Mapped:
    """A coded culture result: the organism grown (SNOMED CT), or no growth."""
    payload: dict[str, Any] = {"loinc": loinc, "specimen": "blood"}
    payload |= culture_result(resource["valueCodeableConcept"], loinc=loinc)
    occurred, payload["occurred_at_as_reported"] = effective(resource, settings)
    submission = envelope(
        settings,
        event_type="lab_result_recorded",
        who_=who(resource, settings),
        occurred_at=occurred,
        source_ref=f"Observation/{resource.get('id')}",
        payload=payload,
    )
    growth = "growth" if "organism" in payload else "no_growth"
    return Mapped(record, submission, f"Observation:culture:{growth}")


def culture_result(concept: Resource, *, loinc: str) -> dict[str, Any]:
    """`result` (growth 1 / no growth 0, unit "1") and `organism` of a coded culture value.

    Raises:
        MappingError: the analyte is not a culture, or the value names no organism in SNOMED
            CT and is no "no growth" either (a bare "positive" cannot tell INF-05 a pathogen
            from a skin commensal, and ingest would refuse the later result naming the
            organism, under the same Observation id, as a conflicting resend).

    """
    field = "valueCodeableConcept"
    if loinc != "600-7":
        reason = f"a coded value is read only for a blood culture; LOINC {loinc} needs a number"
        raise MappingError(field, reason)
    snomed = [c for c in concept.get("coding", []) if c.get("system") == SNOMED and c.get("code")]
    if any(str(c["code"]) in NO_GROWTH for c in snomed):
        return {"result": {"value": 0.0, "unit": "1"}}
    organisms = [c for c in snomed if str(c["code"]) not in _POSITIVE_ONLY]
    if not organisms:
        shown = ", ".join(f"{s or '?'}|{c or '?'}" for s, c in codes(concept)) or "no coding"
        why = "positive without an organism" if snomed else "no SNOMED CT coding"
        reason = f"{shown}: {why}; a culture needs its organism coded in SNOMED CT"
        raise MappingError(field, reason)
    code = str(organisms[0]["code"])
    if not code.isdigit() or not 6 <= len(code) <= 18:
        raise MappingError(field, f"{code!r} is not a SNOMED CT concept id")
    organism: dict[str, Any] = {"code": code}
    shown = " ".join(str(organisms[0].get("display") or "").split())[:200]
    if shown:
        organism["display"] = shown
    return {"result": {"value": 1.0, "unit": "1"}, "organism": organism}
