"""Specimen-aware lab kinds, procedure-window tags of every infection signal, INF-05's two sets.

Hand-worked clinical cases: an ascitic-fluid cell count under the blood WBC code is not a
blood WBC; a fever or SIRS after a plasma exchange says so; a coagulase-negative
staphylococcus in one blood culture set is a probable contaminant, in two sets drawn on
consecutive days a bacteraemia.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clinical.labs import LAB_KIND_TABLE, SYSTEMIC_SPECIMENS, lab_kind, lab_kind_rows
from clinical.organisms import is_common_commensal, same_or_consecutive_days
from clinical.windows import WindowLengths, infection_window_rows
from schemas import LOG_FACT_ADAPTER, LabResultRecorded, Treatment, Urgency, canonical_bytes
from services.ingest.core.accept import Accepted, accept
from services.rules.core.fold import replay
from services.rules.core.state_codec import decode_state, encode_state

from .factories import (
    SITE,
    T0,
    TRIAL,
    ae_reported,
    enrolled,
    envelope,
    fired,
    hours_after,
    lab_result,
    procedure,
    rule_ids,
    unique,
    vitals,
)

PE = Treatment.PLASMA_EXCHANGE
MSC = Treatment.UC_MSC_INFUSION
ENROLLED = T0 - timedelta(days=3)


def _ingested(pid: str, payload: dict[str, Any], at: datetime) -> Any:
    """A lab result as it reaches the rules: accepted (normalised) by ingest, then decoded."""
    item = {
        "event_type": "lab_result_recorded",
        "trial_id": TRIAL,
        "site_id": SITE,
        "participant_id": pid,
        "occurred_at": at.isoformat(),
        "source": "lab",
        "source_ref": unique("lab"),
        "payload": payload,
    }
    outcome = accept(item, recorded_at=at + timedelta(hours=1), actor="test")
    assert isinstance(outcome, Accepted), outcome
    return LOG_FACT_ADAPTER.validate_json(canonical_bytes(outcome.wire))


# --- 1. specimen ---


def test_ascitic_wbc_is_neither_a_sirs_criterion_nor_a_ctcae_leukopenia() -> None:
    """An ascitic WBC 300 /mm3 (6690-2 on ascitic fluid, lab range 3.5-9.5) with HR 95.

    Read as blood it would be 0.3 x10^9/L: a SIRS criterion (< 4) making two with the heart
    rate, and "White blood cell decreased" grade 4 (< 1.0) paged at U0. It is peritoneal
    fluid, normal for ascites: nothing fires. The same count on blood fires both.
    """
    fluid, blood = unique("P"), unique("P")

    def history(pid: str, specimen: str) -> list[Any]:
        payload = {
            "loinc": "6690-2",
            "result": {"value": 300, "unit": "/mm3"},
            "reference_low": 3500,
            "reference_high": 9500,
            "specimen": specimen,
        }
        return [
            enrolled(pid, at=ENROLLED),
            vitals(pid, heart_rate=95, env={"at": T0}),
            _ingested(pid, payload, hours_after(1)),
        ]

    _, from_fluid = replay(history(fluid, "ascitic_fluid"))
    _, from_blood = replay(history(blood, "blood"))

    assert rule_ids(from_fluid) == []
    assert {"INF-02", "LAB-G4"} <= set(rule_ids(from_blood))
    (grade4,) = fired(from_blood, "LAB-G4")
    assert grade4.payload.values["term"] == "White blood cell decreased"


@pytest.mark.parametrize("specimen", ["urine", "other", "ascitic_fluid"])
def test_a_blood_analyte_on_another_specimen_is_not_graded(specimen: str) -> None:
    """Sodium 20 mmol/L is a urine (or unknown fluid) value, not hyponatraemia grade 4."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        lab_result(pid, "sodium", 20, low=135, specimen=specimen, at=T0),
    ]

    _, signals = replay(facts)

    assert signals == ()


@pytest.mark.parametrize("specimen", SYSTEMIC_SPECIMENS)
def test_serum_plasma_and_blood_are_one_systemic_compartment(specimen: str) -> None:
    """Sodium 119 mmol/L is CTCAE hyponatraemia grade 4 on serum, plasma or whole blood."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        lab_result(pid, "sodium", 119, low=135, specimen=specimen, at=T0),
    ]

    _, signals = replay(facts)

    assert [s.payload.values["term"] for s in fired(signals, "LAB-G4")] == ["Hyponatremia"]


def test_lab_kind_table_is_keyed_by_analyte_and_specimen() -> None:
    """One row per (LOINC, specimen); ascitic fluid gives only the PMN count, urine nothing."""
    keys = [(row.loinc, row.specimen) for row in LAB_KIND_TABLE]

    assert len(keys) == len(set(keys))
    assert lab_kind("751-8", "ascitic_fluid") == "ascitic_pmn"
    assert lab_kind("751-8", "blood") == "neutrophils"
    assert lab_kind("6690-2", "ascitic_fluid") is None
    assert lab_kind("6690-2", None) == "wbc"  # the contract's default specimen is serum
    assert {row.specimen for row in LAB_KIND_TABLE if row.kind != "ascitic_pmn"} == set(
        SYSTEMIC_SPECIMENS
    )
    assert not [row for row in LAB_KIND_TABLE if row.specimen in {"urine", "other"}]
    assert ("600-7", "blood", "culture", "1") in lab_kind_rows()


# --- 3. infection after infusion or PE ---


def test_fever_after_a_plasma_exchange_says_which_when_and_hours_since() -> None:
    """Fever 38.6 °C 30 h after a PE start: in W_INF_PE (72 h) -> tagged with that PE."""
    pid = unique("P")
    pe = procedure(pid, PE, at=T0, minutes=180)
    facts = [
        enrolled(pid, at=ENROLLED),
        pe,
        vitals(pid, temperature=38.6, env={"at": hours_after(30)}),
    ]

    _, signals = replay(facts)

    (fever,) = fired(signals, "INF-01")
    values = fever.payload.values
    assert (values["procedure_proximate"], values["window"], values["procedure"]) == (
        True,
        "W_INF_PE",
        "plasma_exchange",
    )
    assert values["procedure_started_at"] == T0.isoformat()
    assert values["hours_after_procedure_start"] == 30.0
    assert values["procedure_event_id"] == str(pe.event_id)
    assert "30 h after the start of a plasma exchange (W_INF_PE)" in fever.payload.reason
    assert pe.event_id in fever.payload.evidence_event_ids


def test_sirs_after_a_uc_msc_infusion_is_tagged_and_outside_any_window_says_so() -> None:
    """SIRS (T 38.5, HR 110) 3 days after a UC-MSC start: in W_INF_MSC (7 d); 9 days: not."""
    near, far = unique("P"), unique("P")

    def history(pid: str, days: float) -> list[Any]:
        at = hours_after(24 * days)
        return [
            enrolled(pid, at=ENROLLED),
            procedure(pid, MSC, at=T0, minutes=30),
            vitals(pid, temperature=38.5, heart_rate=110, env={"at": at}),
        ]

    _, tagged = replay(history(near, 3))
    _, untagged = replay(history(far, 9))

    (sirs,) = fired(tagged, "INF-02")
    assert sirs.payload.values["window"] == "W_INF_MSC"
    assert sirs.payload.values["hours_after_procedure_start"] == 72.0
    assert sirs.payload.values["procedure_started_at"] == T0.isoformat()
    (late,) = fired(untagged, "INF-02")
    assert late.payload.values["procedure_proximate"] is False


def test_post_msc_fever_keeps_its_reaction_window_and_says_when() -> None:
    """T 38.0 °C 3 h after a UC-MSC start: post-MSC fever (W_IR_MSC), U1, with its start time."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        procedure(pid, MSC, at=T0, minutes=30),
        vitals(pid, temperature=38.0, env={"at": hours_after(3)}),
    ]

    _, signals = replay(facts)

    (fever,) = fired(signals, "INF-01")
    assert fever.payload.urgency is Urgency.U1
    assert (fever.payload.values["window"], fever.payload.values["procedure_started_at"]) == (
        "W_IR_MSC",
        T0.isoformat(),
    )


def test_every_infection_family_signal_says_whether_it_follows_a_procedure() -> None:
    """Fever, SIRS, qSOFA, SBP, culture and infection AE after one PE all carry the tag."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        procedure(pid, PE, at=T0, minutes=180),
        vitals(pid, temperature=38.6, heart_rate=110, env={"at": hours_after(10)}),
        vitals(pid, respiratory_rate=24, systolic_bp=95, env={"at": hours_after(11)}),
        lab_result(pid, "neutrophils", 0.4, specimen="ascitic_fluid", at=hours_after(12)),
        lab_result(pid, "culture", 1, specimen="blood", at=hours_after(13)),
        ae_reported(pid, term="Sepsis", env={"at": hours_after(14)}),
    ]

    _, signals = replay(facts)
    infection = [s for s in signals if s.payload.rule_id.startswith("INF-")]

    assert {s.payload.rule_id for s in infection} >= {
        "INF-01", "INF-02", "INF-03", "INF-04", "INF-05", "INF-07",
    }  # fmt: skip
    assert all(s.payload.values["window"] == "W_INF_PE" for s in infection)
    assert all(s.payload.values["procedure_started_at"] == T0.isoformat() for s in infection)


def test_window_rows_for_the_report() -> None:
    """The report's AESI-by-window SQL: W_INF_MSC (start, +168 h], W_INF_PE (start, +72 h]."""
    assert infection_window_rows(WindowLengths()) == (
        ("uc_msc_infusion", "UC-MSC infusion", "W_INF_MSC", 168.0),
        ("plasma_exchange", "plasma exchange", "W_INF_PE", 72.0),
    )


# --- 4. INF-05 commensal two-set rule ---

CONS = {"code": "116197008", "display": "Staphylococcus, coagulase negative"}
S_AUREUS = {"code": "3092008", "display": "Staphylococcus aureus"}


def culture(pid: str, organism: dict[str, str] | None, at: datetime) -> LabResultRecorded:
    """A blood culture set with growth of `organism` collected at `at`."""
    payload: dict[str, Any] = {
        "loinc": "600-7",
        "result": {"value": 1, "unit": "1", "normalised_value": 1, "normalised_unit": "1"},
        "specimen": "blood",
    }
    if organism is not None:
        payload["organism"] = organism
    return LabResultRecorded(
        **envelope(pid, at=at, recorded_at=at + timedelta(days=2)), payload=payload
    )


def test_one_set_of_coagulase_negative_staphylococcus_is_not_bacteraemia() -> None:
    """CoNS in one set (NHSN common commensal): a probable contaminant, no INF-05 page."""
    pid = unique("P")

    _, signals = replay([enrolled(pid, at=ENROLLED), culture(pid, CONS, T0)])

    assert rule_ids(signals) == []


def test_cons_in_two_sets_on_consecutive_days_is_bacteraemia() -> None:
    """CoNS at 22:00 UTC 1 Mar (06:00 2 Mar at the site) and 02:00 UTC 3 Mar (10:00 3 Mar).

    Site days 2 and 3 March are consecutive: the second set completes the pair and fires,
    naming both sets; the pair is one episode.
    """
    pid = unique("P")
    first = culture(pid, CONS, datetime(2024, 3, 1, 22, 0, tzinfo=UTC))
    second = culture(pid, CONS, datetime(2024, 3, 3, 2, 0, tzinfo=UTC))

    _, signals = replay([enrolled(pid, at=ENROLLED), first, second])

    (bacteraemia,) = fired(signals, "INF-05")
    assert bacteraemia.causation_id == second.event_id
    assert {first.event_id, second.event_id} <= set(bacteraemia.payload.evidence_event_ids)
    assert bacteraemia.payload.values["culture_sets"] == 2
    assert bacteraemia.payload.values["common_commensal"] is True
    assert bacteraemia.payload.urgency is Urgency.U0


def test_cons_two_sets_two_days_apart_or_same_draw_is_not_bacteraemia() -> None:
    """Site days 2 and 4 March are not consecutive; two bottles of one draw are one set."""
    apart, one_draw = unique("P"), unique("P")

    _, far = replay(
        [
            enrolled(apart, at=ENROLLED),
            culture(apart, CONS, datetime(2024, 3, 1, 22, 0, tzinfo=UTC)),
            culture(apart, CONS, datetime(2024, 3, 4, 2, 0, tzinfo=UTC)),
        ]
    )
    _, same = replay(
        [enrolled(one_draw, at=ENROLLED), culture(one_draw, CONS, T0), culture(one_draw, CONS, T0)]
    )

    assert (rule_ids(far), rule_ids(same)) == ([], [])


def test_a_late_first_set_completes_the_pair_too() -> None:
    """The earlier-drawn set reported after the later one still makes the pair."""
    pid = unique("P")
    later = culture(pid, CONS, hours_after(20))
    earlier = culture(pid, CONS, T0)
    earlier = earlier.model_copy(update={"recorded_at": later.recorded_at + timedelta(hours=1)})

    _, signals = replay([enrolled(pid, at=ENROLLED), later, earlier])

    assert [s.causation_id for s in fired(signals, "INF-05")] == [earlier.event_id]


def test_a_recognised_pathogen_in_one_set_fires() -> None:
    """S. aureus (SNOMED CT 3092008) in one set is a bacteraemia: INF-05 U0."""
    pid = unique("P")

    _, signals = replay([enrolled(pid, at=ENROLLED), culture(pid, S_AUREUS, T0)])

    (bacteraemia,) = fired(signals, "INF-05")
    assert bacteraemia.payload.values["organism_snomed"] == "3092008"
    assert bacteraemia.payload.values["common_commensal"] is False
    assert "recognised pathogen" in bacteraemia.payload.reason


def test_single_commensal_set_does_not_make_a_catheter_infection_a_bloodstream_one() -> None:
    """INF-08 escalates to U0 only on a culture INF-05 counts (not a lone CoNS set)."""
    lone, pair = unique("P"), unique("P")

    def history(pid: str, *cultures: datetime) -> list[Any]:
        return [
            enrolled(pid, at=ENROLLED),
            ae_reported(pid, term="Catheter related infection", env={"at": T0}),
            *(culture(pid, CONS, at) for at in cultures),
        ]

    _, one = replay(history(lone, hours_after(2)))
    _, two = replay(history(pair, hours_after(2), hours_after(20)))

    assert [s.payload.urgency for s in fired(one, "INF-08")] == [Urgency.U1]
    assert [s.payload.urgency for s in fired(two, "INF-08")] == [Urgency.U1, Urgency.U0]


@pytest.mark.parametrize(
    ("code", "display", "commensal"),
    [
        ("116197008", None, True),
        ("77086004", "Genus Corynebacterium", True),
        ("5851001", "Corynebacterium diphtheriae", False),
        ("0000001", "Staphylococcus epidermidis", True),
        ("60875001", None, True),
        ("0000002", "Cutibacterium acnes", True),
        ("0000003", "Propionibacterium acnes", True),
        ("84408007", "Bacillus cereus", True),
        ("0000004", "Bacillus anthracis", False),
        ("0000005", "Micrococcus luteus", True),
        ("0000006", "Streptococcus viridans group", True),
        ("3092008", "Staphylococcus aureus", False),
        ("112283007", "Escherichia coli", False),
        ("0000007", "Gram-negative bacillus", False),
    ],
)
def test_common_commensal_list(code: str, display: str | None, commensal: bool) -> None:
    """The NHSN common commensals by code or display; their pathogenic species are not."""
    assert is_common_commensal(code, display) is commensal


def test_calendar_days_are_the_sites() -> None:
    """23:30 UTC on 1 March is 07:30 on 2 March in Guangzhou."""
    assert same_or_consecutive_days(
        datetime(2024, 3, 1, 23, 30, tzinfo=UTC), datetime(2024, 3, 3, 15, 0, tzinfo=UTC)
    )
    assert not same_or_consecutive_days(
        datetime(2024, 3, 1, 15, 0, tzinfo=UTC), datetime(2024, 3, 3, 17, 0, tzinfo=UTC)
    )


def test_a_cultures_organism_survives_the_state_round_trip() -> None:
    """The organism and its commensal flag are stored; other observations keep six fields."""
    pid = unique("P")
    states, _ = replay(
        [enrolled(pid, at=ENROLLED), culture(pid, CONS, T0), lab_result(pid, "hb", 90, at=T0)]
    )
    state = states[(TRIAL, pid)]

    restored = decode_state(encode_state(state))

    assert restored == state
    (grown,) = restored.series("culture")
    assert (grown.organism, grown.commensal) == ("116197008", True)
    assert restored.series("hb")[0].organism is None
