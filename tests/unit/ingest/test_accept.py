"""Accepting a submission: derived ids, UTC, normalised units, specific rejections."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import FACT_ADAPTER, LabResultRecorded, canonical_bytes
from services.ingest.core.accept import Accepted, Rejection, accept, event_id_for
from tests.factories import enrolment, lab, sae

NOW = datetime(2024, 3, 2, tzinfo=UTC)


def test_lab_result_is_normalised_and_keeps_the_original() -> None:
    """Original value and unit stay beside the normalised ones (DESIGN.md)."""
    item = lab(value=1.2, unit="mg/dL")
    item["payload"]["reference_high"] = 1.2

    accepted = accept(item, recorded_at=NOW, actor="tester")

    assert isinstance(accepted, Accepted)
    fact = FACT_ADAPTER.validate_python(accepted.wire)  # the wire form is a valid fact
    assert isinstance(fact, LabResultRecorded)
    assert (fact.payload.result.value, fact.payload.result.unit) == (1.2, "mg/dL")
    assert (fact.payload.result.normalised_value, fact.payload.result.normalised_unit) == (
        20.52,
        "umol/L",
    )
    assert fact.payload.normalised_reference_high == 20.52


def test_event_id_is_derived_from_the_scoped_key() -> None:
    """A resubmission of the same source record gets the same id (a duplicate, not a new fact);
    the same source_ref at another site is another record with another id."""
    item = enrolment(source="edc", source_ref="rand-17", site_id="S01")

    first = accept(item, recorded_at=NOW, actor="a")
    second = accept(item, recorded_at=datetime(2025, 1, 1, tzinfo=UTC), actor="b")
    elsewhere = accept({**item, "site_id": "S02"}, recorded_at=NOW, actor="a")

    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    assert isinstance(elsewhere, Accepted)
    expected = event_id_for("edc", "rand-17", trial_id=item["trial_id"], site_id="S01")
    assert first.fact.event_id == second.fact.event_id == expected
    assert elsewhere.fact.event_id != expected


def test_times_are_stored_in_utc() -> None:
    """Offsets are normalised so the canonical bytes never depend on the sender's zone."""
    accepted = accept(
        enrolment(occurred_at="2024-03-01T08:00:00+08:00"), recorded_at=NOW, actor="a"
    )

    assert isinstance(accepted, Accepted)
    assert b'"occurred_at":"2024-03-01T00:00:00Z"' in canonical_bytes(accepted.wire)


def _without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        (
            {**enrolment(), "event_type": "lab_resul"},
            "event_type",
            "unknown event type 'lab_resul'",
        ),
        (_without(enrolment(), "participant_id"), "participant_id", "Field required"),
        (lab(unit="stones"), "payload.result.unit", "'stones' cannot be converted"),
        (lab(value=float("inf")), "payload.result.value", "finite number"),
        (lab(occurred_at="2024-03-01T08:00:00"), "occurred_at", "timezone"),
        (lab(loinc="9999-9"), "payload.loinc", "not in the lab catalogue"),
        (sae(payload={"ctcae_grade": 7}), "payload.ctcae_grade", "less than or equal to 5"),
        (enrolment(participant_id="Jane Doe"), "participant_id", "pattern"),
        ({**enrolment(), "surname": "Doe"}, "surname", "Extra inputs are not permitted"),
        ([1, 2], "(event)", "must be a JSON object"),
        ({**enrolment(), "event_id": "x"}, "event_id", "assigned by ingest"),
        ({**enrolment(), "source_ref": ""}, "source_ref", "at least 1 character"),
    ],
)
def test_bad_input_is_rejected_with_the_field_and_reason(
    item: Any, field: str, reason: str
) -> None:
    """Bad input gets a clear, specific error: which field and why."""
    result = accept(item, recorded_at=NOW, actor="a")

    assert isinstance(result, Rejection)
    assert any(e.field == field and reason in e.reason for e in result.errors), result.errors
