"""A small hand-built feed for the DSMB report tests, with the recorded time of each item.

Eight participants, two per arm, as_of 2024-04-15T00:00Z. What each one contributes, and so
what the report must count, is written out beside the data here and as expected tables in
tests/integration/test_report_tables.py (worked out by hand from this file).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from services.ingest.core.accept import event_id_for
from tests.unit.report.eventlog import build_event_log

AS_OF: Final = datetime(2024, 4, 15, tzinfo=UTC)
TRIAL: Final = "NCT01724398"


def _t(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Day `day` of March 2024 (day 32 = 1 April), UTC."""
    return datetime(2024, 3, 1, hour, minute, tzinfo=UTC) + timedelta(days=day - 1)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _item(
    event_type: str, participant: str, site: str, at: datetime, ref: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "trial_id": TRIAL,
        "site_id": site,
        "participant_id": participant,
        "occurred_at": _iso(at),
        "source": "edc",
        "source_ref": ref,
        "payload": payload,
    }


def _enrol(participant: str, site: str, arm: str, day: int) -> dict[str, Any]:
    return _item("participant_enrolled", participant, site, _t(day), f"rand:{participant}",
                 {"arm": arm})  # fmt: skip


def _msc(participant: str, site: str, start: datetime, n: int) -> dict[str, Any]:
    payload = {
        "treatment": "uc_msc_infusion",
        "ended_at": _iso(start + timedelta(minutes=30)),
        "sequence_number": n,
        "dose_cells_per_kg": 100000.0,
    }
    return _item("treatment_administered", participant, site, start, f"msc:{participant}:{n}",
                 payload)  # fmt: skip


def _pe(participant: str, site: str, start: datetime, n: int) -> dict[str, Any]:
    payload = {
        "treatment": "plasma_exchange",
        "ended_at": _iso(start + timedelta(hours=2)),
        "sequence_number": n,
        "volume_ml": 2000.0,
        "replacement_fluid": "ffp",
    }
    return _item("treatment_administered", participant, site, start, f"pe:{participant}:{n}",
                 payload)  # fmt: skip


def _ae(participant: str, site: str, onset: datetime, ref: str, **fields: Any) -> dict[str, Any]:
    payload = {
        "ae_ref": ref,
        "term": fields.pop("term"),
        "ctcae_grade": fields.pop("grade"),
        "seriousness_criteria": fields.pop("criteria", []),
        "relatedness_uc_msc": fields.pop("msc", "not_applicable"),
        "relatedness_plasma_exchange": fields.pop("pe", "not_applicable"),
        "expectedness": fields.pop("expectedness", "expected"),
        "outcome": fields.pop("outcome", "recovered"),
        "awareness_at": _iso(fields.pop("aware", onset + timedelta(hours=2))),
    }
    assert not fields, fields
    return _item("adverse_event_reported", participant, site, onset, ref, payload)


def _lab(
    participant: str, site: str, at: datetime, loinc: str, value: float, unit: str, **ref: float
) -> dict[str, Any]:
    payload: dict[str, Any] = {"loinc": loinc, "result": {"value": value, "unit": unit}}
    if "low" in ref:
        payload["reference_low"] = ref["low"]
    if "high" in ref:
        payload["reference_high"] = ref["high"]
    ref_id = f"lab:{participant}:{loinc}:{_iso(at)}"
    return _item("lab_result_recorded", participant, site, at, ref_id, payload)


def _diarrhoea(grade: int) -> dict[str, Any]:
    return {
        "ae_ref": "A1-AE1",
        "term": "Diarrhea",
        "ctcae_grade": grade,
        "seriousness_criteria": [],
        "relatedness_uc_msc": "not_applicable",
        "relatedness_plasma_exchange": "not_applicable",
        "expectedness": "expected",
        "outcome": "recovered",
        "awareness_at": _iso(_t(5, 2)),
    }


def fixture_feed() -> list[tuple[dict[str, Any], datetime]]:
    """(submission, recorded_at) pairs; ingest them in recorded order."""
    items: list[tuple[dict[str, Any], datetime | None]] = []

    def add(item: dict[str, Any], recorded: datetime | None = None) -> None:
        items.append((item, recorded))

    # Arm A. P-A1: a grade-3 diarrhoea corrected to grade 1; MELD 27 (week 0) and 18 (week 1);
    # a pruritus recorded after the as-of time (must not count).
    add(_enrol("P-A1", "S01", "A", 1))
    add(_item("adverse_event_reported", "P-A1", "S01", _t(5), "A1-AE1", _diarrhoea(3)))
    add(
        _item("fact_corrected", "P-A1", "S01", _t(6), "A1-AE1:correction",
              {"supersedes_event_id": str(event_id_for("edc", "A1-AE1", trial_id=TRIAL,
                                                        site_id="S01")),
               "reason": "transcription error", "replacement": _diarrhoea(1)})
    )  # fmt: skip
    for loinc, value, unit in (("14631-6", 171.0, "umol/L"), ("6301-6", 2.0, "{INR}"),
                               ("14682-9", 132.6, "umol/L")):  # fmt: skip
        add(_lab("P-A1", "S01", _t(2, 8), loinc, value, unit))
    for loinc, value, unit in (("14631-6", 85.5, "umol/L"), ("6301-6", 1.6, "{INR}"),
                               ("14682-9", 88.4, "umol/L")):  # fmt: skip
        add(_lab("P-A1", "S01", _t(8, 10), loinc, value, unit))
    add(_ae("P-A1", "S01", _t(41), "A1-AE2", term="Pruritus", grade=1), AS_OF + timedelta(days=1))
    # P-A2: fatal hepatic failure (SAE, reported on time), death on day 20 after randomisation.
    add(_enrol("P-A2", "S02", "A", 2))
    add(_ae("P-A2", "S02", _t(19), "A2-AE1", term="Hepatic failure", grade=5,
            criteria=["death"], outcome="fatal", aware=_t(19, 6)))  # fmt: skip
    add(_item("sae_reported_to_sponsor", "P-A2", "S02", _t(19, 20), "A2-AE1:report",
              {"ae_ref": "A2-AE1"}))  # fmt: skip
    add(_item("death_recorded", "P-A2", "S02", _t(21), "death:P-A2",
              {"cause_category": "liver_failure", "related_ae_ref": "A2-AE1"}))  # fmt: skip

    # Arm B. P-B1: 4 infusions; post-infusion fever (infusion reaction); sepsis grade 4,
    # serious, possibly related, unexpected = SUSAR, 16 h after an infusion (STOP-01, STOP-03),
    # reported late; ALT 35 -> 130 (ULN 40): shift grade 0 -> 2.
    add(_enrol("P-B1", "S01", "B", 1))
    add(_lab("P-B1", "S01", _t(1) - timedelta(hours=2), "1742-6", 35, "U/L", low=7, high=40))
    for n, day in enumerate((2, 9, 16, 23), start=1):
        add(_msc("P-B1", "S01", _t(day, 8), n))
    add(_ae("P-B1", "S01", _t(2, 10), "B1-AE1", term="Fever", grade=1, msc="possible"))
    add(_lab("P-B1", "S01", _t(5), "1742-6", 130, "U/L", low=7, high=40))
    add(_ae("P-B1", "S01", _t(10), "B1-AE2", term="Sepsis", grade=4,
            criteria=["life_threatening", "hospitalisation"], msc="possible",
            expectedness="unexpected", aware=_t(10, 2)))  # fmt: skip
    add(_item("sae_reported_to_sponsor", "P-B1", "S01", _t(11, 5), "B1-AE2:report",
              {"ae_ref": "B1-AE2"}))  # fmt: skip
    # P-B2: one infusion, a urinary tract infection 40 h later, withdrawn a week in.
    add(_enrol("P-B2", "S02", "B", 3))
    add(_msc("P-B2", "S02", _t(4, 8), 1))
    add(_ae("P-B2", "S02", _t(6), "B2-AE1", term="Urinary tract infection", grade=2,
            msc="not_related"))  # fmt: skip
    add(_item("participant_withdrawn", "P-B2", "S02", _t(10), "withdrawn:P-B2",
              {"reason": "consent_withdrawn"}))  # fmt: skip

    # Arm C. P-C1: 3 PE; paraesthesia during the first (PE complication); ionised calcium
    # 0.85 mmol/L 30 min after it ended (STOP-01 event; grade 3, no baseline); platelets
    # 130 -> 48 (LLN 125): shift 0 -> 3.
    add(_enrol("P-C1", "S03", "C", 1))
    add(_lab("P-C1", "S03", _t(1) - timedelta(hours=3), "777-3", 130, "10*9/L", low=125,
             high=350))  # fmt: skip
    for n, day in enumerate((2, 5, 8), start=1):
        add(_pe("P-C1", "S03", _t(day, 9), n))
    add(_ae("P-C1", "S03", _t(2, 10), "C1-AE1", term="Paraesthesia", grade=1, pe="probable"))
    add(_lab("P-C1", "S03", _t(2, 11, 30), "1994-3", 0.85, "mmol/L", low=1.12, high=1.32))
    add(_lab("P-C1", "S03", _t(6), "777-3", 48, "10*9/L", low=125, high=350))
    # P-C2: 3 PE (last 9 March 12:00); variceal bleed 10.5 days later, serious, not reported.
    add(_enrol("P-C2", "S03", "C", 2))
    for n, day in enumerate((3, 6, 9), start=1):
        add(_pe("P-C2", "S03", _t(day, 12), n))
    add(_ae("P-C2", "S03", _t(20), "C2-AE1", term="Oesophageal varices haemorrhage", grade=3,
            criteria=["hospitalisation"], pe="not_related", outcome="not_recovered",
            aware=_t(20, 4)))  # fmt: skip

    # Arm D. P-D1: PE then UC-MSC on day 2; hepatic encephalopathy 10 h after the infusion,
    # grade 2, then updated to grade 3 and serious; reported on time.
    add(_enrol("P-D1", "S01", "D", 1))
    add(_pe("P-D1", "S01", _t(2, 9), 1))
    add(_msc("P-D1", "S01", _t(2, 14), 1))
    add(_ae("P-D1", "S01", _t(3), "D1-AE1", term="Hepatic encephalopathy", grade=2,
            msc="not_related", pe="not_related", outcome="recovering", aware=_t(3, 1)))  # fmt: skip
    add(_item("sae_reported_to_sponsor", "P-D1", "S01", _t(3, 20), "D1-AE1:report",
              {"ae_ref": "D1-AE1"}))  # fmt: skip
    update = _ae("P-D1", "S01", _t(3), "D1-AE1", term="Hepatic encephalopathy", grade=3,
                 criteria=["hospitalisation"], msc="not_related", pe="not_related",
                 outcome="recovering", aware=_t(3, 1))  # fmt: skip
    update["event_type"] = "adverse_event_updated"
    update["source_ref"] = "D1-AE1:v2"
    add(update, _t(4, 12))
    # P-D2: no procedure yet; acute kidney injury.
    add(_enrol("P-D2", "S02", "D", 2))
    add(_ae("P-D2", "S02", _t(10), "D2-AE1", term="Acute kidney injury", grade=2))

    # Default recorded time: an hour after the clinical time (all before AS_OF but one).
    pairs = [
        (item, recorded or datetime.fromisoformat(item["occurred_at"]) + timedelta(hours=1))
        for item, recorded in items
    ]
    return sorted(pairs, key=lambda pair: pair[1])


def build_fixture_log(directory: Path) -> Path:
    """Ingest the fixture feed into a fresh log; return its event_log.parquet."""
    pairs = fixture_feed()
    recorded = {item["source_ref"]: at for item, at in pairs}
    return build_event_log(
        [item for item, _ in pairs], directory, recorded_at=lambda i: recorded[i["source_ref"]]
    )
