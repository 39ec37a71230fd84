"""The report grades the lab kinds the rules read; terms normalise alike in Python and SQL."""

from __future__ import annotations

import duckdb
import pytest

from clinical import codes as rules
from clinical.ae_terms import BODY_SYSTEMS, UNCLASSIFIED, body_system, normalise_term_sql
from clinical.labs import lab_kind
from services.report.core import catalogue
from services.report.core.config import ReportConfig


def test_lab_kinds_are_the_rules_specimen_aware_kinds() -> None:
    """Every graded LOINC is the rules' kind on a systemic specimen and no kind on urine."""
    for kind in catalogue.LAB_KINDS:
        for loinc in kind.loincs:
            for specimen in ("serum", "plasma", "blood"):
                assert lab_kind(loinc, specimen) == kind.kind, (loinc, specimen)
            assert lab_kind(loinc, "urine") is None, loinc


TERMS = [
    "Oesophageal varices haemorrhage",
    "  Upper Gastro-intestinal  haemorrhage ",
    "Paraesthesia",
    "Anaemia",
    "Melaena",
    "Oedema limbs",
    "Catheter_related/infection",
    "Hepatic encephalopathy",
]


@pytest.mark.parametrize("term", TERMS)
def test_term_normalisation_matches_the_rules_in_python_and_sql(term: str) -> None:
    """normalise_term (Python) and norm_term (SQL) both give the rules' normal form."""
    with duckdb.connect(":memory:") as con:
        in_sql = con.execute(f"SELECT {normalise_term_sql('?')}", [term]).fetchone()

    assert in_sql == (rules.normalise_term(term),)


def test_body_systems_are_keyed_by_normalised_terms() -> None:
    assert all(rules.normalise_term(t) == t for t in BODY_SYSTEMS)
    assert body_system("Oesophageal varices haemorrhage") == "Gastrointestinal disorders"
    assert body_system("Something rare") == UNCLASSIFIED


def test_packaged_configuration_file_equals_the_core_defaults() -> None:
    """The TOML v1 file and ReportConfig() say the same (RULES.md §0.1, §4.1, §8.2)."""
    from services.report.adapters.trial_config import load_report_config

    assert load_report_config() == ReportConfig()
