"""notify shows controlled AE terms only; free text is withheld wherever it is quoted."""

from __future__ import annotations

from services.notify.core.terms import (
    WITHHELD,
    redact_reason,
    redact_value,
)


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
