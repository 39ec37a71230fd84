"""Ingest accepts a blood culture's growth flag with its organism, and refuses contradictions.

A culture is LOINC 600-7 with result 1 (unit "1") for growth and 0 for none; the organism
(SNOMED CT) rides beside it for the infection rules. An organism on another analyte, or beside
"no growth", says two things at once and is refused with the field named.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import FACT_ADAPTER, LabResultRecorded
from services.ingest.core.accept import Accepted, Rejection, accept
from tests.factories import lab

NOW = datetime(2024, 3, 2, tzinfo=UTC)
AUREUS = {"code": "3092008", "display": "Staphylococcus aureus"}


def _culture(value: float, organism: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    item = lab(loinc=kw.pop("loinc", "600-7"), value=value, unit=kw.pop("unit", "1"))
    item["payload"]["specimen"] = "blood"
    if organism is not None:
        item["payload"]["organism"] = organism
    return item


def test_growth_with_its_organism_is_normalised_and_keeps_the_organism() -> None:
    verdict = accept(_culture(1, AUREUS), recorded_at=NOW, actor="t")

    assert isinstance(verdict, Accepted)
    fact = FACT_ADAPTER.validate_python(verdict.wire)
    assert isinstance(fact, LabResultRecorded)
    assert (fact.payload.result.normalised_value, fact.payload.result.normalised_unit) == (1, "1")
    assert fact.payload.organism is not None
    assert fact.payload.organism.model_dump() == AUREUS


def test_no_growth_is_accepted_without_an_organism() -> None:
    verdict = accept(_culture(0), recorded_at=NOW, actor="t")

    assert isinstance(verdict, Accepted)
    assert verdict.wire["payload"]["result"]["normalised_value"] == 0
    assert "organism" not in verdict.wire["payload"]  # absent, so old facts hash as before


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        (_culture(0, AUREUS), "payload.organism", "no growth"),
        (_culture(5.0, AUREUS, loinc="1975-2", unit="mg/dL"), "payload.organism", "not a culture"),
        (_culture(2), "payload.result.value", "not a possible blood_culture value"),
        (_culture(1, {"code": "S.aureus"}), "payload.organism.code", "pattern"),
        (_culture(1, unit="mg/dL"), "payload.result.unit", "mg/dL"),
    ],
)
def test_a_contradictory_or_malformed_culture_is_refused_naming_the_field(
    item: dict[str, Any], field: str, words: str
) -> None:
    verdict = accept(item, recorded_at=NOW, actor="t")

    assert isinstance(verdict, Rejection)
    assert [e.field for e in verdict.errors] == [field]
    assert words in verdict.errors[0].reason
