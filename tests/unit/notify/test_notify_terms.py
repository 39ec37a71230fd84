"""notify's controlled terms are the product's own: the report catalogue and the CTCAE lab terms."""

from __future__ import annotations

from clinical.calculators.ctcae import supported_terms
from services.notify.core.terms import (
    CONTROLLED_TERMS,
    WITHHELD,
    normalise_term,
    redact_reason,
    redact_value,
)
from services.report.core.catalogue import BODY_SYSTEMS
from services.report.core.catalogue import normalise_term as report_normalise


def test_the_controlled_terms_are_the_catalogues() -> None:
    expected = set(BODY_SYSTEMS) | {report_normalise(term) for term in supported_terms()}
    assert expected == CONTROLLED_TERMS


def test_terms_are_normalised_as_the_report_does() -> None:
    for term in ("Oesophageal varices haemorrhage", "Blood-bilirubin  increased", "Melaena"):
        assert normalise_term(term) == report_normalise(term)


def test_a_free_text_term_is_withheld_wherever_the_reason_quotes_it() -> None:
    term = "Sepsis (patient's wife called, MRN 99)"
    reason = f"AE AE-1 '{term}' grade 3; also 'rash in John Doe'; and 'Sepsis'"
    redacted = redact_reason(reason, {"term": term})
    assert "MRN" not in redacted and "John" not in redacted and "wife" not in redacted
    assert redacted.count(WITHHELD) == 2
    assert redacted.endswith("'Sepsis'")
    assert redact_value("term", term) == WITHHELD
    assert redact_value("term", "Hyperkalemia") == "Hyperkalemia"
    assert redact_value("ctcae_grade", 3) == 3
