"""Settings and helpers shared by the FHIR resource mappers (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from safetymon.importers._types import MappingError
from safetymon.importers.dates import complete, iso_utc
from safetymon.importers.sdtm._study import StudyMappingError, TreatmentMap, treatment_map

UCUM: Final = "http://unitsofmeasure.org"
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
#: SNOMED CT unit concepts that some senders use instead of UCUM, matched on system + code.
_SNOMED_UNITS: Final = {"258813002": "mmol/L", "258814008": "umol/L"}

Resource = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FhirSettings:
    """Where FHIR resources land: trial, source, sites, and which codes are treatments."""

    trial_id: str = "NCT01724398"
    source: str = "fhir"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    default_site: str | None = None
    #: "Patient/<id>" -> (participant code, site code).
    patients: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    conditions_as_adverse_events: bool = False
    #: "system|code" of a Procedure or medication -> treatment.
    treatments: Mapping[str, TreatmentMap] = field(default_factory=dict)


def settings_from_toml(data: Mapping[str, Any]) -> FhirSettings:
    """Parse a FHIR mapping file (see README, "Import mappings")."""
    try:
        zone = ZoneInfo(str(data.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise StudyMappingError(f"timezone: {data.get('timezone')!r} is not an IANA zone") from exc
    patients = {}
    for ref, entry in dict(data.get("patients", {})).items():
        try:
            patients[str(ref)] = (str(entry["participant"]), str(entry["site"]))
        except (KeyError, TypeError) as exc:
            raise StudyMappingError(f"patients.{ref}: needs participant and site") from exc
    site = data.get("default_site")
    return FhirSettings(
        trial_id=str(data.get("trial_id", "NCT01724398")),
        source=str(data.get("source", "fhir")),
        zone=zone,
        default_site=None if site is None else str(site),
        patients=patients,
        conditions_as_adverse_events=bool(data.get("conditions_as_adverse_events", False)),
        treatments={
            str(code): treatment_map(str(code), dict(spec))
            for code, spec in dict(data.get("treatments", {})).items()
        },
    )


def codes(concept: Resource | None) -> list[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept."""
    if not concept:
        return []
    return [(c.get("system", ""), c.get("code", "")) for c in concept.get("coding", [])]


def display(concept: Resource | None) -> str:
    """The concept's text, else its first coding's display."""
    if not concept:
        return ""
    text = concept.get("text") or next(
        (c.get("display") for c in concept.get("coding", []) if c.get("display")), ""
    )
    return " ".join(str(text).split())[:200]


def who(resource: Resource, settings: FhirSettings, *, key: str = "subject") -> tuple[str, str]:
    """(participant, site) of the Patient the resource is about; never its display name."""
    reference = str((resource.get(key) or {}).get("reference", ""))
    if not reference.startswith("Patient/"):
        raise MappingError(key, "no Patient reference: whose record is it?")
    if reference in settings.patients:
        return settings.patients[reference]
    if settings.default_site is None:
        reason = f"{reference} has no site: list it in [patients] or set default_site"
        raise MappingError(key, reason)
    return reference.removeprefix("Patient/"), settings.default_site


def instant(
    value: str | None, *, field: str, settings: FhirSettings
) -> tuple[datetime, dict[str, Any]]:
    """A FHIR date/dateTime/instant completed to an instant, with how."""
    if not value:
        raise MappingError(field, "no time given")
    return complete(str(value), field=field, zone=settings.zone)


def effective(resource: Resource, settings: FhirSettings) -> tuple[datetime, dict[str, Any]]:
    """The clinical time of an Observation/administration: effective[x] (a period's start)."""
    for name in ("effectiveDateTime", "effectiveInstant", "occurrenceDateTime"):
        if resource.get(name):
            return instant(resource[name], field=name, settings=settings)
    for name in ("effectivePeriod", "performedPeriod", "occurrencePeriod"):
        if (resource.get(name) or {}).get("start"):
            return instant(resource[name]["start"], field=f"{name}.start", settings=settings)
    if resource.get("performedDateTime"):
        return instant(resource["performedDateTime"], field="performedDateTime", settings=settings)
    # `issued` is when the report was released, not when the specimen was taken: no stand-in.
    raise MappingError("effective[x]", "no clinical time (effective[x]); issued is not one")


def ucum_unit(quantity: Resource, field: str) -> str:
    """The UCUM unit of a Quantity, matched on system + code, never on the display text."""
    system, code = quantity.get("system"), quantity.get("code")
    if system == UCUM and code:
        return str(code)
    if system == SNOMED and code in _SNOMED_UNITS:
        return _SNOMED_UNITS[str(code)]
    shown = quantity.get("unit")
    reason = f"unit system {system!r} code {code!r} is not UCUM (display {shown!r} not trusted)"
    raise MappingError(field, reason)


def quantity(value: Resource | None, field: str) -> dict[str, Any]:
    """A FHIR Quantity as the contract's Quantity (value, UCUM unit, comparator)."""
    if not value or value.get("value") is None:
        raise MappingError(field, "no numeric value (valueQuantity)")
    result: dict[str, Any] = {"value": float(value["value"]), "unit": ucum_unit(value, field)}
    if value.get("comparator"):
        result["comparator"] = value["comparator"]
    return result


def envelope(
    settings: FhirSettings,
    *,
    event_type: str,
    who_: tuple[str, str],
    occurred_at: datetime,
    source_ref: str,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """A `Submission`-shaped dict."""
    return {
        "event_type": event_type,
        "trial_id": settings.trial_id,
        "site_id": who_[1],
        "participant_id": who_[0],
        "occurred_at": iso_utc(occurred_at),
        "source": settings.source,
        "source_ref": source_ref,
        "payload": payload,
    }
