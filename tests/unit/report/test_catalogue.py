"""The report classifies AEs and labs exactly as the rules do (no service imports another)."""

from __future__ import annotations

import duckdb
import pytest

from clinical import codes as rules
from services.report.adapters.duckdb_source import _norm_term_sql
from services.report.core import catalogue
from services.report.core.config import ReportConfig


def _category(key: str) -> catalogue.Category:
    return next(c for c in catalogue.AESI if c.key == key)


def test_aesi_term_lists_equal_the_rules_catalogue() -> None:
    """HE, bleeding, infection, IR-MSC and plasma-allergy lists are the rules' own."""
    he, bleeding, infection = _category("he"), _category("bleeding"), _category("infection")
    reaction, pe = _category("infusion_reaction"), _category("pe_complication")

    assert set(he.matchers[0].terms) == rules.HE_TERMS
    assert set(he.matchers[0].llts) == rules.HE_LLT
    assert set(bleeding.matchers[0].terms) == rules.BLEEDING_TERMS
    assert set(bleeding.matchers[0].llts) == rules.BLEEDING_LLT
    assert infection.matchers[0].words == rules.INFECTION_WORDS
    assert set(infection.matchers[0].llts) == rules.INFECTION_LLT
    assert set(reaction.matchers[0].terms) == rules.IR_MSC_TERMS
    assert set(reaction.matchers[0].llts) == rules.IR_MSC_LLT
    assert set(pe.matchers[0].terms) >= rules.PLASMA_ALLERGY_TERMS | rules.CITRATE_TERMS
    assert set(pe.matchers[0].llts) >= rules.PLASMA_ALLERGY_LLT | rules.CITRATE_LLT


def test_lab_kinds_equal_the_rules_loinc_mapping() -> None:
    """Every graded LOINC code maps to the same kind as in the rules."""
    for kind in catalogue.LAB_KINDS:
        for loinc in kind.loincs:
            assert rules.LAB_KINDS[loinc][0] == kind.kind, loinc


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
        in_sql = con.execute(f"SELECT {_norm_term_sql('?')}", [term]).fetchone()

    assert catalogue.normalise_term(term) == rules.normalise_term(term)
    assert in_sql == (rules.normalise_term(term),)


def test_body_systems_are_keyed_by_normalised_terms() -> None:
    assert all(catalogue.normalise_term(t) == t for t in catalogue.BODY_SYSTEMS)
    assert catalogue.body_system("Oesophageal varices haemorrhage") == "Gastrointestinal disorders"
    assert catalogue.body_system("Something rare") == catalogue.UNCLASSIFIED


def test_packaged_configuration_file_equals_the_core_defaults() -> None:
    """The TOML v1 file and ReportConfig() say the same (RULES.md §0.1, §4.1, §8.2)."""
    from services.report.adapters.trial_config import load_report_config

    assert load_report_config() == ReportConfig()
