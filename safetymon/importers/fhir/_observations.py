"""FHIR Observation (lab result or vital signs) to events (pure)."""

from __future__ import annotations

from typing import Any, Final

from safetymon.importers._types import Mapped, MappingError
from safetymon.importers.fhir._common import (
    LOINC,
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
#: The lab LOINC codes RULES.md §0.5 lists (those safetymon monitors), blood culture included.
LAB_LOINC: Final = frozenset(code for pair in LB_LOINC.values() for code in pair) | {"600-7"}
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
