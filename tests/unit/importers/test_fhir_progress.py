"""The FHIR import counts resources, the unit its progress bar advances in (was 32/30)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetymon.importers.fhir import count_resources
from safetymon.importers.run import fhir_outcomes


def _patient(number: int) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": f"p{number}"}


def test_total_counts_bundle_entries_and_bad_files_like_the_outcomes(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": _patient(1)},
            {"resource": {"resourceType": "Bundle", "entry": [{"resource": _patient(2)}]}},
            {"resource": _patient(3)},
        ],
    }
    (tmp_path / "a-bundle.json").write_text(json.dumps(bundle))
    (tmp_path / "b-single.json").write_text(json.dumps(_patient(4)))
    (tmp_path / "c-broken.json").write_text("{not json")

    outcomes, total = fhir_outcomes([tmp_path], None)

    assert total == len(list(outcomes)) == 5


def test_a_resource_without_type_counts_as_one_outcome() -> None:
    assert count_resources({"id": "x"}) == 1
    assert count_resources({"resourceType": "Bundle"}) == 0
