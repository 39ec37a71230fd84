"""FHIR R4/R4B resources and Bundles to safetymon submissions (pure mapping).

Each resource is first validated with the `fhir.resources` R4B models (R4B shares R4's
resources for everything mapped here); the mapping then reads the validated JSON, so that
dates keep their precision as sent. A resource that cannot be mapped comes back as `Unmapped`
with its id and the reason: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from safetymon.importers._types import Mapped, MappingError, Outcome, Unmapped
from safetymon.importers.fhir._clinical import map_adverse_event, map_condition, map_treatment
from safetymon.importers.fhir._common import FhirSettings, Resource, settings_from_toml
from safetymon.importers.fhir._observations import (
    LAB_LOINC,
    VITAL_LOINC,
    NotMonitoredError,
    map_observation,
)

__all__ = [
    "LAB_LOINC",
    "VITAL_LOINC",
    "FhirSettings",
    "count_resources",
    "map_resource",
    "settings_from_toml",
]

_Mapper = Callable[..., Mapped]
_MAPPERS: Final[dict[str, _Mapper]] = {
    "Observation": map_observation,
    "AdverseEvent": map_adverse_event,
    "Condition": map_condition,
    "Procedure": map_treatment,
    "MedicationAdministration": map_treatment,
}
#: Resource types that are context, not facts: reported as skipped with this reason.
_CONTEXT: Final = {
    "Patient": "demographics stay at the site: participants are pseudonymous codes",
    "ServiceRequest": "an order, not a result",
    "DiagnosticReport": "a report's results are mapped from their own Observation resources",
}


def count_resources(resource: Any) -> int:  # noqa: ANN401 - parsed JSON
    """How many outcomes `map_resource` yields for it: one, or one per Bundle entry (nested)."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
        return sum(count_resources(entry.get("resource")) for entry in resource.get("entry", []))
    return 1


def map_resource(resource: Any, settings: FhirSettings, *, origin: str) -> Iterator[Outcome]:  # noqa: ANN401 - parsed JSON
    """Outcomes of one resource; a Bundle yields those of each entry, in order."""
    if not isinstance(resource, dict) or "resourceType" not in resource:
        yield Unmapped(origin, "resourceType", "not a FHIR resource (no resourceType)")
        return
    kind = str(resource["resourceType"])
    record = f"{origin}:{kind}/{resource.get('id', '?')}"
    if kind == "Bundle":
        for index, entry in enumerate(resource.get("entry", [])):
            yield from map_resource(entry.get("resource"), settings, origin=f"{origin}#{index}")
        return
    problem = _invalid(resource)
    if problem is not None:
        yield Unmapped(record, "(resource)", f"not a valid FHIR R4B {kind}: {problem}")
        return
    if resource.get("status") == "entered-in-error":
        yield Unmapped(record, "status", "entered-in-error: the sender withdrew it", "skipped")
        return
    yield _map(kind, resource, settings, record=record)


def _map(kind: str, resource: Resource, settings: FhirSettings, *, record: str) -> Outcome:
    if kind in _CONTEXT:
        return Unmapped(record, "resourceType", f"{kind}: {_CONTEXT[kind]}", "skipped")
    mapper = _MAPPERS.get(kind)
    if mapper is None:
        return Unmapped(record, "resourceType", f"{kind} is not a resource safetymon imports")
    try:
        return mapper(resource, settings, record=record)
    except NotMonitoredError as exc:
        return Unmapped(record, exc.field, exc.reason, "skipped")
    except MappingError as exc:
        return Unmapped(record, exc.field, exc.reason)


def _invalid(resource: Resource) -> str | None:
    try:
        get_fhir_model_class(str(resource["resourceType"])).model_validate(resource)
    except KeyError:
        return "unknown resource type"
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return None
