"""LFP-01..04: MELD ceiling, MELD rise, CLIF-C organ failure, transplant (RULES.md §5)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from clinical.calculators import MeldLabs, bilirubin_mg_dl, creatinine_mg_dl, meld
from schemas import Arm, LabResultRecorded, ParticipantEnrolled, Role, Treatment, Urgency
from services.rules.core.fold import replay
from services.rules.core.state import ParticipantState
from services.rules.core.state_codec import decode_state, encode_state

from .factories import T0, envelope, hours_after, procedure, unique, west_haven

ENROLLED = T0 - timedelta(days=1)
INV_SO = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
SI = {"1975-2": "umol/L", "14631-6": "umol/L", "14682-9": "umol/L", "6301-6": "{INR}"}


def enrol(pid: str, *, baseline_meld: int | None = None, **env: Any) -> ParticipantEnrolled:
    """A randomisation with an explicit (or no) baseline MELD."""
    payload = {"arm": Arm.UC_MSC, "baseline_meld": baseline_meld}
    return ParticipantEnrolled(**envelope(pid, at=env.pop("at", ENROLLED), **env), payload=payload)


def lab(pid: str, loinc: str, value: float, at: datetime) -> LabResultRecorded:
    """A result already normalised by ingest (bilirubin/creatinine µmol/L, INR)."""
    unit = SI[loinc]
    result = {"value": value, "unit": unit, "normalised_value": value, "normalised_unit": unit}
    return LabResultRecorded(**envelope(pid, at=at), payload={"loinc": loinc, "result": result})


def meld_labs(pid: str, bili: float, inr: float, cr: float, at: datetime) -> list:
    """Bilirubin (µmol/L), INR and creatinine (µmol/L) collected together at `at`."""
    return [lab(pid, "14631-6", bili, at), lab(pid, "6301-6", inr, at), lab(pid, "14682-9", cr, at)]


def signals_of(facts: list, rule_id: str) -> list:
    _, signals = replay(facts)
    return [s for s in signals if s.payload.rule_id == rule_id]


def test_meld_inputs_are_converted_from_si_as_in_the_published_vectors() -> None:
    """RULES.md §5.2 M3: 171 µmol/L, INR 2.0, 132.6 µmol/L -> MELD 27 (via the calculators)."""
    labs = MeldLabs(bilirubin_mg_dl(171), 2.0, creatinine_mg_dl(132.6))

    assert meld(labs) == 27


class TestMeldCeiling:
    def test_meld_30_after_randomisation_is_lfp01_u1(self) -> None:
        """LFP-01: original MELD 30 (342 µmol/L, INR 2.1, 132.6 µmol/L) -> U1 to INV and SO."""
        pid = unique("P")

        (signal,) = signals_of([enrol(pid), *meld_labs(pid, 342, 2.1, 132.6, T0)], "LFP-01")

        assert (signal.payload.urgency, signal.payload.recipients) == (Urgency.U1, INV_SO)
        assert signal.payload.values["meld"] == 30
        assert signal.payload.values["dialysis_rule"] is False

    def test_meld_29_does_not_fire(self) -> None:
        """Boundary: MELD 29 (300 µmol/L, INR 2.0, 132.6 µmol/L) is below the ceiling."""
        pid = unique("P")

        assert signals_of([enrol(pid), *meld_labs(pid, 300, 2.0, 132.6, T0)], "LFP-01") == []

    def test_inputs_more_than_48_h_apart_give_no_meld(self) -> None:
        """MELD needs bilirubin, INR and creatinine within 48 h of each other."""
        pid, pid2 = unique("P"), unique("P")
        apart = [
            enrol(pid),
            lab(pid, "14631-6", 342, T0),
            lab(pid, "6301-6", 2.1, T0),
            lab(pid, "14682-9", 132.6, hours_after(48, T0) + timedelta(minutes=1)),
        ]
        exactly = [
            enrol(pid2),
            lab(pid2, "14631-6", 342, T0),
            lab(pid2, "6301-6", 2.1, T0),
            lab(pid2, "14682-9", 132.6, hours_after(48, T0)),
        ]

        assert (len(signals_of(apart, "LFP-01")), len(signals_of(exactly, "LFP-01"))) == (0, 1)

    def test_dialysis_twice_in_the_prior_week_sets_creatinine_to_4(self) -> None:
        """OPTN dialysis rule: >= 2 RRT sessions in the week -> Cr 4.0 mg/dL (M2 18 -> 31)."""
        pid = unique("P")
        facts = [
            enrol(pid),
            procedure(pid, Treatment.RENAL_REPLACEMENT, at=T0 - timedelta(days=3)),
            procedure(pid, Treatment.RENAL_REPLACEMENT, at=T0 - timedelta(days=1)),
            *meld_labs(pid, 85.5, 1.6, 88.4, T0),
        ]

        (signal,) = signals_of(facts, "LFP-01")

        assert (signal.payload.values["meld"], signal.payload.values["dialysis_rule"]) == (31, True)

    def test_a_persisting_high_meld_does_not_refire(self) -> None:
        """RULES.md §0.2: daily MELD >= 30 stays one episode."""
        pid = unique("P")
        facts = [enrol(pid)] + [
            fact
            for day in range(4)
            for fact in meld_labs(pid, 342, 2.5, 132.6, hours_after(24 * day))
        ]

        assert len(signals_of(facts, "LFP-01")) == 1

    def test_before_randomisation_does_not_fire(self) -> None:
        """Only scores at or after randomisation count (the inclusion ceiling applies after)."""
        pid = unique("P")
        facts = [*meld_labs(pid, 342, 2.5, 132.6, ENROLLED - timedelta(hours=2)), enrol(pid)]

        assert signals_of(facts, "LFP-01") == []


class TestMeldRise:
    def test_rise_of_5_over_the_baseline_meld_fires(self) -> None:
        """LFP-02: MELD 27 with baseline_meld 22 (rise 5) -> U1 to INV and SO."""
        pid = unique("P")

        (signal,) = signals_of(
            [enrol(pid, baseline_meld=22), *meld_labs(pid, 171, 2.0, 132.6, T0)], "LFP-02"
        )

        assert (signal.payload.urgency, signal.payload.recipients) == (Urgency.U1, INV_SO)
        assert signal.payload.values["rise_from_baseline"] == 5
        assert signal.payload.values["criteria"] == "baseline"

    def test_rise_of_4_does_not_fire(self) -> None:
        """Boundary: MELD 27 with baseline_meld 23 (rise 4) does not fire."""
        pid = unique("P")

        facts = [enrol(pid, baseline_meld=23), *meld_labs(pid, 171, 2.0, 132.6, T0)]

        assert signals_of(facts, "LFP-02") == []

    def test_rise_of_5_over_the_lowest_meld_in_14_days_fires(self) -> None:
        """LFP-02: MELD 18 (M2) then 27 (M3) nine days later, no baseline MELD -> fires."""
        pid = unique("P")
        facts = [
            enrol(pid),
            *meld_labs(pid, 85.5, 1.6, 88.4, T0),
            *meld_labs(pid, 171, 2.0, 132.6, hours_after(24 * 9)),
        ]

        (signal,) = signals_of(facts, "LFP-02")

        assert (signal.payload.values["lowest_meld_14d"], signal.payload.values["meld"]) == (18, 27)
        assert signal.payload.values["criteria"] == "lowest_14d"

    def test_a_low_meld_more_than_14_days_before_does_not_count(self) -> None:
        """Boundary: the lowest MELD is taken from the prior 14 days only."""
        pid = unique("P")
        facts = [
            enrol(pid),
            *meld_labs(pid, 85.5, 1.6, 88.4, T0),
            *meld_labs(pid, 171, 2.0, 132.6, hours_after(24 * 15)),
        ]

        assert signals_of(facts, "LFP-02") == []


class TestOrganFailure:
    def test_one_new_organ_failure_is_u1(self) -> None:
        """LFP-03: INR >= 2.5 (coagulation failure) after randomisation -> U1 to INV and SO."""
        pid = unique("P")

        (signal,) = signals_of([enrol(pid), lab(pid, "6301-6", 2.5, T0)], "LFP-03")

        assert (signal.payload.urgency, signal.payload.recipients) == (Urgency.U1, INV_SO)
        assert signal.payload.values["new_organ_failures"] == "coagulation"

    def test_inr_just_below_2_5_is_not_a_failure(self) -> None:
        """Boundary: INR 2.49 is no coagulation failure."""
        pid = unique("P")

        assert signals_of([enrol(pid), lab(pid, "6301-6", 2.49, T0)], "LFP-03") == []

    def test_second_concurrent_failure_escalates_to_u0(self) -> None:
        """LFP-03: a second concurrent failure (creatinine 176.8 µmol/L) -> U0 (ACLF >= 2)."""
        pid = unique("P")
        facts = [
            enrol(pid),
            lab(pid, "6301-6", 2.6, T0),
            lab(pid, "14682-9", 176.8, hours_after(6)),
            lab(pid, "14682-9", 180.0, hours_after(12)),
        ]

        signals = signals_of(facts, "LFP-03")

        assert [s.payload.urgency for s in signals] == [Urgency.U1, Urgency.U0]
        assert signals[1].payload.values["organ_failures"] == "kidney,coagulation"

    def test_vasopressor_and_liver_failure_are_two_failures(self) -> None:
        """Circulation (vasopressor) and liver (bilirubin 205.2 µmol/L) failures -> U0."""
        pid = unique("P")
        facts = [
            enrol(pid),
            procedure(pid, Treatment.VASOPRESSOR, at=T0),
            lab(pid, "14631-6", 205.2, hours_after(2)),
        ]

        signals = signals_of(facts, "LFP-03")

        assert [s.payload.urgency for s in signals] == [Urgency.U1, Urgency.U0]

    def test_failure_already_present_at_baseline_is_not_new(self) -> None:
        """An organ failing before randomisation (bilirubin 250 µmol/L) is not a new failure."""
        pid = unique("P")
        facts = [
            lab(pid, "14631-6", 250.0, ENROLLED - timedelta(hours=3)),
            enrol(pid),
            lab(pid, "14631-6", 260.0, T0),
        ]

        assert signals_of(facts, "LFP-03") == []

    def test_brain_failure_alone_is_left_to_the_he_rules(self) -> None:
        """West Haven 3 alone is paged by HE-01/02 at U0; LFP-03 counts it for concurrency."""
        pid = unique("P")
        alone = [enrol(pid), west_haven(pid, 3, at=T0)]
        pid2 = unique("P")
        with_inr = [
            enrol(pid2),
            west_haven(pid2, 3, at=T0),
            lab(pid2, "6301-6", 2.6, hours_after(1)),
        ]

        assert signals_of(alone, "LFP-03") == []
        assert [s.payload.urgency for s in signals_of(with_inr, "LFP-03")] == [Urgency.U0]


class TestTransplant:
    def test_liver_transplant_is_lfp04_u1_once(self) -> None:
        """LFP-04: a liver transplant -> U1 to INV and SO, once per procedure."""
        pid = unique("P")
        transplant = procedure(pid, Treatment.LIVER_TRANSPLANT, at=T0)

        signals = signals_of([enrol(pid), transplant, lab(pid, "6301-6", 1.1, T0)], "LFP-04")

        assert [(s.payload.urgency, s.payload.recipients) for s in signals] == [
            (Urgency.U1, INV_SO)
        ]
        assert signals[0].payload.evidence_event_ids == (transplant.event_id,)


def test_state_keeps_baseline_meld_and_baselines_through_storage() -> None:
    """The enrolment's baseline MELD and the pre-randomisation results survive a round trip."""
    pid = unique("P")
    facts = [
        lab(pid, "14631-6", 250.0, ENROLLED - timedelta(hours=3)),
        enrol(pid, baseline_meld=21),
    ]

    states, _ = replay(facts)
    state = next(iter(states.values()))

    assert (state.baseline_meld, [o.kind for o in state.baselines]) == (21, ["bilirubin"])
    assert decode_state(encode_state(state)) == state


def test_one_renal_replacement_run_of_24_h_is_the_cvvhd_dialysis_rule() -> None:
    """OPTN: 24 h of CVVHD in the prior week also sets creatinine to 4.0 mg/dL."""
    pid = unique("P")
    facts = [
        enrol(pid),
        procedure(pid, Treatment.RENAL_REPLACEMENT, minutes=24 * 60, at=T0 - timedelta(days=2)),
        *meld_labs(pid, 85.5, 1.6, 88.4, T0),
    ]

    (signal,) = signals_of(facts, "LFP-01")

    assert signal.payload.values["dialysis_rule"] is True


def test_states_stored_before_the_new_fields_load_and_keep_their_bytes() -> None:
    """Backward compatibility: no baseline MELD or baselines -> the JSON has no new keys."""
    state = ParticipantState("NCT01724398", unique("P"), "S01")

    text = encode_state(state)

    assert "baseline" not in text
    assert decode_state(text) == state
