"""Events on the log to SDTM AE rows: latest state, corrections, partial dates kept."""

from __future__ import annotations

from typing import Any

from safetymon.export_sdtm import ae_rows


def _ae(event_id: str, ref: str, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": event_id, "event_type": "adverse_event_reported", "trial_id": "NCT01724398",
        "participant_id": "P-1", "occurred_at": "2014-03-01T00:00:00Z",
        "payload": {"ae_ref": ref, "term": "RASH", "ctcae_grade": 2, **payload},
    }  # fmt: skip


def test_the_latest_state_wins_a_retraction_removes_and_partial_dates_return() -> None:
    partial = {"as_reported": "2014-03", "precision": "month", "imputation": "start_of_period"}
    events = [
        _ae("e1", "P-1.AE.4", occurred_at_as_reported=partial),
        {**_ae("e2", "P-1.AE.4", seriousness_criteria=["hospitalisation"]),
         "event_type": "adverse_event_updated"},
        _ae("e3", "SITE-AE-9"),
        {"event_id": "e4", "event_type": "fact_corrected", "participant_id": "P-1",
         "payload": {"supersedes_event_id": "e3", "reason": "duplicate entry"}},
    ]  # fmt: skip

    (row,) = ae_rows(events)

    assert (row["AESEQ"], row["AESPID"], row["AESER"], row["AESHOSP"]) == (
        "4",
        "P-1.AE.4",
        "Y",
        "Y",
    )
    assert (row["AESTDTC"], row["AETOXGR"]) == ("2014-03-01T00:00:00", "2")


def test_a_partial_onset_goes_back_as_reported() -> None:
    partial = {"as_reported": "2010-06", "precision": "month", "imputation": "start_of_period"}

    (row,) = ae_rows([_ae("e1", "X-1", occurred_at_as_reported=partial)])

    assert (row["AESTDTC"], row["AESEQ"]) == ("2010-06", "1")
