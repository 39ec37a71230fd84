"""A FHIR blood culture with a coded organism becomes a 600-7 growth result carrying the organism.

The real example is the HL7 R4 `observation-example-f206-staphylococcus.json` (S. aureus in a
blood culture, SNOMED CT 3092008). It has no effective[x], only `issued` (when the report was
released): the importer never takes `issued` for the collection time, so the verbatim file is
refused for that, and the tests add the collection time its DiagnosticReport gave in earlier
versions of the specification (2013-03-11 03:45).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from safetymon.importers._types import Mapped, Outcome, Unmapped
from safetymon.importers.fhir import FhirSettings, map_resource
from services.ingest.core.accept import Accepted, accept

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "data" / "fhir-r4"
SETTINGS = FhirSettings(default_site="S01")
SNOMED = "http://snomed.info/sct"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
COLLECTED = "2013-03-11T03:45:00+01:00"


def _f206(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads(
        (EXAMPLES / "observation-example-f206-staphylococcus.json").read_text()
    )
    return resource | {"effectiveDateTime": COLLECTED} | changes


def _value(code: str, display: str | None = None, system: str = SNOMED) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


def _one(resource: dict[str, Any]) -> Outcome:
    (outcome,) = map_resource(resource, SETTINGS, origin="t.json")
    return outcome


def _wire(outcome: Outcome) -> dict[str, Any]:
    assert isinstance(outcome, Mapped), outcome
    verdict = accept(outcome.submission, recorded_at=NOW, actor="t")
    assert isinstance(verdict, Accepted), verdict
    payload: dict[str, Any] = verdict.wire["payload"]
    return payload


def test_the_real_staphylococcus_culture_is_growth_with_its_organism() -> None:
    out = _one(_f206())

    payload = _wire(out)
    assert payload["loinc"] == "600-7"
    assert payload["specimen"] == "blood"
    assert payload["organism"] == {"code": "3092008", "display": "Staphylococcus aureus"}
    assert {k: payload["result"][k] for k in ("value", "unit", "normalised_value")} == {
        "value": 1.0,
        "unit": "1",
        "normalised_value": 1.0,
    }
    assert payload["result"]["normalised_unit"] == "1"
    assert isinstance(out, Mapped)
    assert out.submission["occurred_at"] == "2013-03-11T02:45:00Z"
    assert "Roel" not in json.dumps(out.submission)  # the patient's display name stays out
    assert out.tag == "Observation:culture:growth"


def test_the_verbatim_example_is_refused_for_its_missing_collection_time_not_its_value() -> None:
    resource = _f206()
    del resource["effectiveDateTime"]

    out = _one(resource)

    assert isinstance(out, Unmapped)
    assert (out.field, out.status) == ("effective[x]", "rejected")


@pytest.mark.parametrize(
    ("code", "display"),
    [("264868006", "No growth"), ("260385009", "Negative"), ("260415000", "Not detected")],
)
def test_no_growth_is_zero_without_an_organism(code: str, display: str) -> None:
    out = _one(_f206(valueCodeableConcept=_value(code, display)))

    payload = _wire(out)
    assert (payload["result"]["value"], payload["result"]["unit"]) == (0.0, "1")
    assert "organism" not in payload
    assert isinstance(out, Mapped)
    assert out.tag == "Observation:culture:no_growth"


@pytest.mark.parametrize("loinc", ["17928-3", "17934-1"])
def test_an_aerobic_or_anaerobic_bottle_lands_as_the_blood_culture(loinc: str) -> None:
    code = {"coding": [{"system": "http://loinc.org", "code": loinc}]}
    epidermidis = _value("60875001", "Staphylococcus epidermidis")

    payload = _wire(_one(_f206(code=code, valueCodeableConcept=epidermidis)))

    assert payload["loinc"] == "600-7"
    assert payload["organism"] == {"code": "60875001", "display": "Staphylococcus epidermidis"}


def test_an_organism_without_display_keeps_its_code_alone() -> None:
    payload = _wire(_one(_f206(valueCodeableConcept=_value("3092008"))))

    assert payload["organism"] == {"code": "3092008", "display": None}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (_value("10828004", "Positive"), "positive without an organism"),
        (_value("260373001", "Detected"), "positive without an organism"),
        (_value("STAU", "S. aureus", system="http://acmelabs.org"), "no SNOMED CT coding"),
        ({"text": "Staphylococcus aureus"}, "no SNOMED CT coding"),
        (_value("3092-008"), "is not a SNOMED CT concept id"),
    ],
)
def test_a_culture_value_that_names_no_coded_organism_is_refused_saying_why(
    value: dict[str, Any], words: str
) -> None:
    out = _one(_f206(valueCodeableConcept=value))

    assert isinstance(out, Unmapped)
    assert (out.field, out.status) == ("valueCodeableConcept", "rejected")
    assert words in out.reason


def test_a_coded_value_on_any_other_lab_is_refused_specifically() -> None:
    code = {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]}

    out = _one(_f206(code=code, valueCodeableConcept=_value("260385009", "Negative")))

    assert isinstance(out, Unmapped)
    assert (out.field, out.status) == ("valueCodeableConcept", "rejected")
    assert out.reason == (
        "a coded value is read only for a blood culture; LOINC 1975-2 needs a number"
    )


def test_a_numeric_blood_culture_still_maps_as_before() -> None:
    resource = _f206(valueQuantity={"value": 1, "system": "http://unitsofmeasure.org", "code": "1"})
    del resource["valueCodeableConcept"]

    payload = _wire(_one(resource))

    assert (payload["loinc"], payload["result"]["value"]) == ("600-7", 1.0)
    assert "organism" not in payload
