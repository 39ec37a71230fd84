"""AE cases (core layer): an initial report and its follow-up records are one case (ICH E2D).

Each record keeps its own `ae_ref` (a site or an SDTM feed sends a new record per follow-up,
e.g. one AESEQ each) and carries the case identity in `case_id`. The SAE-family rules act
once per case: one SAE-01 page, one SAE-02 clock, one SAE-04 candidate and its SUSAR-01
clocks. A record without `case_id` is a case of its own, keyed by its ref, so the keys of
such AEs are those the rules used before cases existed.
"""

from __future__ import annotations

from services.rules.core.state import AdverseEventState, ParticipantState


def case_key(ae: AdverseEventState) -> str:
    """The case an AE record belongs to: `case:<case_id>`, or `ae:<ae_ref>` without one."""
    return f"ae:{ae.ae_ref}" if ae.case_id is None else f"case:{ae.case_id}"


def case_records(state: ParticipantState, ae: AdverseEventState) -> tuple[AdverseEventState, ...]:
    """Every record of `ae`'s case known for the participant, in `ae_ref` order.

    A scan of the participant's AEs, but only for records that carry a case id (few AEs
    per participant by protocol); a record without one is its case's only record.
    """
    if ae.case_id is None:
        return (ae,)
    return tuple(record for record in state.adverse_events if record.case_id == ae.case_id)


def case_of_ref(state: ParticipantState, ae_ref: str) -> str:
    """The case key of the record `ae_ref` (its own ref's case when it is not known)."""
    ae = state.adverse_event(ae_ref)
    return f"ae:{ae_ref}" if ae is None else case_key(ae)


def any_raised(
    state: ParticipantState, prefix: str, case: str, records: tuple[AdverseEventState, ...]
) -> bool:
    """Whether `prefix` was raised for the case or, per record, for any of its records."""
    if f"{prefix}|{case}" in state.raised:
        return True
    return any(f"{prefix}|ae:{record.ae_ref}" in state.raised for record in records)
