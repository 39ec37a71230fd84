"""FHIR mapping rules on single resources: units by system+code, status, bundles, AEs."""

from __future__ import annotations

from typing import Any

from safetymon.importers._types import Mapped, Unmapped
from safetymon.importers.fhir import FhirSettings, map_resource

SETTINGS = FhirSettings(default_site="S01")
UCUM = "http://unitsofmeasure.org"


def _lab(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "bili-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]},
        "subject": {"reference": "Patient/P-042", "display": "Name Never Read"},
        "effectiveDateTime": "2024-03-01T08:00:00+08:00",
        "valueQuantity": {"value": 1.2, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    }
    return resource | changes


def _one(resource: dict[str, Any]) -> Mapped | Unmapped:
    (outcome,) = map_resource(resource, SETTINGS, origin="test.json")
    return outcome


def test_a_lab_observation_maps_with_its_ucum_code_and_no_name() -> None:
    out = _one(_lab())

    assert isinstance(out, Mapped)
    assert out.submission["payload"]["result"] == {"value": 1.2, "unit": "mg/dL"}
    assert out.submission["occurred_at"] == "2024-03-01T00:00:00Z"
    assert out.submission["participant_id"] == "P-042"
    assert "Name Never Read" not in str(out.submission)


def test_a_unit_is_matched_on_system_and_code_never_on_its_display_text() -> None:
    quantity = {"value": 1.2, "unit": "mg/dL", "system": "http://example.org/units", "code": "x"}

    out = _one(_lab(valueQuantity=quantity))

    assert isinstance(out, Unmapped)
    assert (out.field, out.status) == ("valueQuantity", "rejected")
    assert "not UCUM" in out.reason


def test_a_snomed_unit_code_is_translated_and_a_comparator_kept() -> None:
    quantity = {
        "value": 3,
        "comparator": "<",
        "system": "http://snomed.info/sct",
        "code": "258814008",
    }

    out = _one(_lab(valueQuantity=quantity))

    assert isinstance(out, Mapped)
    assert out.submission["payload"]["result"] == {
        "value": 3.0,
        "unit": "umol/L",
        "comparator": "<",
    }


def test_entered_in_error_is_honoured_and_reported() -> None:
    out = _one(_lab(status="entered-in-error"))

    assert out == Unmapped(
        "test.json:Observation/bili-1",
        "status",
        "entered-in-error: the sender withdrew it",
        "skipped",
    )


def test_an_invalid_resource_is_rejected_with_the_model_librarys_reason() -> None:
    out = _one(_lab(valueQuantity={"value": "high", "system": UCUM, "code": "mg/dL"}))

    assert isinstance(out, Unmapped)
    assert out.status == "rejected"
    assert out.reason.startswith("not a valid FHIR R4B Observation: valueQuantity.value")


def test_a_bundle_yields_each_entry_and_a_blood_pressure_panel_is_one_event() -> None:
    panel = {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": "Patient/P-1"},
        "effectiveDateTime": "2012-09-17",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 107, "system": UCUM, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 60, "system": UCUM, "code": "mm[Hg]"},
            },
        ],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": panel}, {"resource": _lab(subject=None)}],
    }

    bp, orphan = map_resource(bundle, SETTINGS, origin="b.json")

    assert isinstance(bp, Mapped)
    assert bp.submission["payload"]["observations"] == {
        "systolic_bp": {"value": 107.0, "unit": "mm[Hg]"},
        "diastolic_bp": {"value": 60.0, "unit": "mm[Hg]"},
    }
    assert bp.submission["payload"]["occurred_at_as_reported"]["precision"] == "day"
    assert isinstance(orphan, Unmapped)
    assert (orphan.record_id, orphan.field) == ("b.json#1:Observation/bili-1", "subject")


def test_a_serious_adverse_event_keeps_its_severity_and_the_catch_all_criterion() -> None:
    seriousness = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
    event = {
        "resourceType": "AdverseEvent",
        "id": "ae-1",
        "actuality": "actual",
        "event": {"text": "Oesophageal varices haemorrhage"},
        "subject": {"reference": "Patient/P-1"},
        "date": "2024-03-01T08:00:00Z",
        "seriousness": {"coding": [{"system": seriousness, "code": "Serious"}]},
        "severity": {"coding": [{"code": "severe"}]},
    }

    out = _one(event)

    assert isinstance(out, Mapped)
    payload = out.submission["payload"]
    assert payload["seriousness_criteria"] == ["important_medical_event"]
    assert (payload["ctcae_grade"], payload["ctcae_grade_source"]) == (3, "from_severity")
    assert out.tag == "AdverseEvent:serious"


def test_a_patient_without_site_is_rejected_when_no_default_site_is_set() -> None:
    (out,) = map_resource(_lab(), FhirSettings(), origin="t.json")

    assert isinstance(out, Unmapped)
    assert "has no site" in out.reason
