"""FHIR AdverseEvent, Condition, Procedure and MedicationAdministration to events (pure)."""

from __future__ import annotations

from typing import Any, Final

from safetymon.importers._case import case_id
from safetymon.importers._types import Mapped, MappingError
from safetymon.importers.fhir._common import (
    SNOMED,
    FhirSettings,
    Resource,
    codes,
    display,
    effective,
    envelope,
    instant,
    who,
)
from safetymon.importers.fhir._observations import NotMonitoredError

_AE_SEVERITY: Final = {"mild": ("mild", 1), "moderate": ("moderate", 2), "severe": ("severe", 3)}
#: SNOMED CT severities of the FHIR condition-severity value set, plus the two ranges the
#: examples use; a range takes its upper grade, so a safety signal errs high.
_SNOMED_SEVERITY: Final = {
    "255604002": ("mild", 1),
    "6736007": ("moderate", 2),
    "24484000": ("severe", 3),
    "371923003": ("moderate", 2),  # mild to moderate
    "371924009": ("severe", 3),  # moderate to severe
}
_AE_OUTCOME: Final = {
    "resolved": "recovered",
    "recovering": "recovering",
    "ongoing": "not_recovered",
    "resolvedwithsequelae": "recovered_with_sequelae",
    "fatal": "fatal",
    "unknown": "unknown",
}


def map_adverse_event(resource: Resource, settings: FhirSettings, *, record: str) -> Mapped:
    """An actual AdverseEvent; a potential one (near miss) is not an adverse event."""
    if resource.get("actuality") == "potential":
        raise NotMonitoredError("actuality", "a potential event (near miss), not an AE")
    severity = next((c.lower() for _, c in codes(resource.get("severity"))), "")
    if severity not in _AE_SEVERITY:
        raise MappingError("severity", f"severity {severity!r} is not mild/moderate/severe")
    serious = any(c.lower() == "serious" for _, c in codes(resource.get("seriousness")))
    payload = _ae_payload(resource, grade=_AE_SEVERITY[severity])
    # FHIR R4 says serious or not, without the ICH E2A criterion: the catch-all criterion.
    payload["seriousness_criteria"] = ["important_medical_event"] if serious else []
    outcome = next((c.lower() for _, c in codes(resource.get("outcome"))), "")
    if outcome in _AE_OUTCOME:
        payload["outcome"] = _AE_OUTCOME[outcome]
    if resource.get("detected"):
        payload["awareness_at"] = instant(
            resource["detected"], field="detected", settings=settings
        )[0].isoformat()
    occurred, payload["occurred_at_as_reported"] = instant(
        resource.get("date"), field="date", settings=settings
    )
    participant = who(resource, settings)
    case = case_id(participant[0], "AEID", _identifier(resource))
    if case is not None:
        payload["case_id"] = case
    submission = envelope(
        settings,
        event_type="adverse_event_reported",
        who_=participant,
        occurred_at=occurred,
        source_ref=f"AdverseEvent/{resource.get('id')}",
        payload=payload,
    )
    return Mapped(record, submission, "AdverseEvent:serious" if serious else "AdverseEvent")


def _identifier(resource: Resource) -> str:
    # The business identifier names the case across resources: a follow-up report sent as a
    # resource of its own keeps it. R4 has one Identifier; R5 a list.
    found = resource.get("identifier") or {}
    for identifier in found if isinstance(found, list) else [found]:
        if str(identifier.get("value", "")).strip():
            return str(identifier["value"])
    return ""


def _ae_payload(resource: Resource, *, grade: tuple[str, int]) -> dict[str, Any]:
    concept = resource.get("event") or resource.get("code")
    term = display(concept)
    if not term:
        raise MappingError("event", "no term")
    return {
        "ae_ref": f"{resource['resourceType']}.{resource.get('id')}"[:64],
        "term": term,
        "ctcae_grade": grade[1],
        "severity": grade[0],
        "ctcae_grade_source": "from_severity",
    }


def map_condition(resource: Resource, settings: FhirSettings, *, record: str) -> Mapped:
    """A confirmed Condition as an AE, when the mapping says Conditions are AEs."""
    if not settings.conditions_as_adverse_events:
        reason = "Conditions are not imported (mapping: conditions_as_adverse_events)"
        raise NotMonitoredError("resourceType", reason)
    status = next((c for _, c in codes(resource.get("verificationStatus"))), "")
    if status != "confirmed":
        raise NotMonitoredError("verificationStatus", f"{status or 'none'}: not a confirmed AE")
    severity = next(
        (
            _SNOMED_SEVERITY[c]
            for s, c in codes(resource.get("severity"))
            if s == SNOMED and c in _SNOMED_SEVERITY
        ),
        None,
    )
    if severity is None:
        raise MappingError("severity", "no severity in the condition-severity value set")
    payload = _ae_payload(resource, grade=severity)
    onset = resource.get("onsetDateTime") or (resource.get("onsetPeriod") or {}).get("start")
    occurred, payload["occurred_at_as_reported"] = instant(
        onset, field="onset[x]", settings=settings
    )
    submission = envelope(
        settings,
        event_type="adverse_event_reported",
        who_=who(resource, settings),
        occurred_at=occurred,
        source_ref=f"Condition/{resource.get('id')}",
        payload=payload,
    )
    return Mapped(record, submission, "Condition")


def map_treatment(resource: Resource, settings: FhirSettings, *, record: str) -> Mapped:
    """A completed Procedure or MedicationAdministration whose code the mapping names."""
    kind = str(resource["resourceType"])
    if resource.get("status") != "completed":
        raise NotMonitoredError("status", f"status {resource.get('status')!r}: not given")
    concept = resource.get("code") or resource.get("medicationCodeableConcept")
    found = [f"{s}|{c}" for s, c in codes(concept)] + _contained_codes(resource)
    spec = next((settings.treatments[k] for k in found if k in settings.treatments), None)
    if spec is None or spec.treatment is None:
        shown = ", ".join(found) or "no code"
        why = spec.skip_reason if spec is not None else "not a treatment safetymon tracks"
        raise NotMonitoredError("code", f"{shown}: {why}")
    payload: dict[str, Any] = {"treatment": spec.treatment.value, **spec.details}
    occurred, payload["occurred_at_as_reported"] = effective(resource, settings)
    end = (resource.get("effectivePeriod") or resource.get("performedPeriod") or {}).get("end")
    if end:
        payload["ended_at"] = instant(end, field="end", settings=settings)[0].isoformat()
    submission = envelope(
        settings,
        event_type="treatment_administered",
        who_=who(resource, settings),
        occurred_at=occurred,
        source_ref=f"{kind}/{resource.get('id')}",
        payload=payload,
    )
    return Mapped(record, submission, f"{kind}:{spec.treatment.value}")


def _contained_codes(resource: Resource) -> list[str]:
    # A MedicationAdministration may point at a contained Medication: match its codes too.
    reference = str((resource.get("medicationReference") or {}).get("reference", ""))
    found = []
    for contained in resource.get("contained", []):
        if reference == f"#{contained.get('id')}":
            found += [f"{s}|{c}" for s, c in codes(contained.get("code"))]
            for part in contained.get("ingredient", []):
                found += [f"{s}|{c}" for s, c in codes(part.get("itemCodeableConcept"))]
    return found
