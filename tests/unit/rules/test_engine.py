"""Engine, projection and signal building: the pure fold the live service and replay share."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid5

import pytest

from schemas import ClinicalFact, FactCorrected, Outcome, SeriousnessCriterion, Treatment
from services.rules.core import engine
from services.rules.core.config import DEFAULT_CONFIG
from services.rules.core.engine import RULES, Rule, evaluate, evaluate_guarded, evolve
from services.rules.core.fold import replay
from services.rules.core.signals import NAMESPACE, signal_id
from services.rules.core.state import ParticipantState
from services.rules.core.state_codec import decode_state, encode_state

from .factories import (
    T0,
    ae_reported,
    ae_updated,
    died,
    enrolled,
    envelope,
    lab,
    treated,
    unique,
)

S = SeriousnessCriterion


def test_rules_run_in_a_fixed_documented_order() -> None:
    """The rules fold in a fixed order: SAE family, bleeding, infection, reactions, HE,
    liver progression, AKI, lab grades, the sentinel stopping rule, then SAE-05 last."""
    assert [rule.rule_id for rule in RULES] == [
        "SAE-01", "SAE-03", "SAE-04", "SAE-02", "SUSAR-01",
        "VB-01", "VB-05", "VB-02", "VB-03", "VB-04", "VB-06",
        "INF-01", "INF-02", "INF-03", "INF-04", "INF-05", "INF-07", "INF-08",
        "IR-MSC-01", "IR-MSC-02", "IR-MSC-03", "PE-01", "PE-02", "PE-03", "PE-04", "PE-05",
        "HE-01", "HE-02",
        "LFP-01", "LFP-02", "LFP-03", "LFP-04", "AKI-01", "AKI-02", "AKI-03", "AKI-04", "AKI-05",
        "LAB-G3", "LAB-G4", "LAB-SHIFT", "STOP-03", "SAE-05",
    ]  # fmt: skip


def test_signal_id_is_the_rules_md_idempotency_key() -> None:
    """Signal ids are uuid5(NS, 'rule|participant|sorted triggers') (RULES.md §0.2)."""
    pid = unique("P")
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,))

    _, signals = evaluate(None, fact)

    assert signals[0].event_id == uuid5(NAMESPACE, f"SAE-01|{pid}|{fact.event_id}")
    assert signal_id("R", "P", [fact.event_id, NAMESPACE]) == signal_id(
        "R", "P", [NAMESPACE, fact.event_id]
    )


def test_evolve_projects_enrolment_procedures_aes_and_death() -> None:
    """The projection keeps arm, enrolment time, procedures, latest AE values and the death."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=T0),
        treated(pid, Treatment.PLASMA_EXCHANGE, at=T0 + timedelta(days=1)),
        ae_reported(pid, ae_ref="AE-1", grade=2),
        ae_updated(pid, ae_ref="AE-1", grade=3),
        died(pid, at=T0 + timedelta(days=3)),
        lab(pid),
    ]
    state = None
    for fact in facts:
        state = evolve(state, fact)

    assert state is not None
    assert (state.arm, state.enrolled_at) == ("B", T0)
    assert [(p.treatment, p.event_id) for p in state.procedures] == [
        ("plasma_exchange", facts[1].event_id)
    ]
    ae = state.adverse_event("AE-1")
    assert ae is not None
    assert (ae.ctcae_grade, ae.event_ids) == (3, (facts[2].event_id, facts[3].event_id))
    assert state.death is not None
    assert state.death.event_id == facts[4].event_id


def test_fact_before_enrolment_creates_state_with_unknown_arm() -> None:
    """A participant first seen in a non-enrolment fact gets site from the envelope, arm None."""
    pid = unique("P")

    state = evolve(None, lab(pid, site_id="S09"))

    assert (state.participant_id, state.site_id, state.arm) == (pid, "S09", None)


def test_enrolment_after_other_facts_sets_the_arm() -> None:
    """A late enrolment fills in the arm without losing what was already known."""
    pid = unique("P")
    state = evolve(None, ae_reported(pid))

    state = evolve(state, enrolled(pid))

    assert state.arm == "B"
    assert state.adverse_event("AE-1") is not None


def test_state_json_round_trip_is_exact_and_stable() -> None:
    """to_json/from_json round-trip exactly and serialise deterministically."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        treated(pid, at=T0),
        ae_reported(pid, criteria=(S.HOSPITALISATION,), awareness_at=T0),
        died(pid, related_ae_ref="AE-1"),
    ]
    states, _ = replay(facts)
    state = states[("NCT01724398", pid)]

    text = encode_state(state)

    assert decode_state(text) == state
    assert encode_state(decode_state(text)) == text
    page = next(k for k in state.raised if k.startswith("SAE-01|ae:AE-1|page:"))
    assert state.raised == frozenset(
        {
            "SAE-01|ae:AE-1",
            page,  # the case's first page, which its follow-up updates thread under
            "SAE-01|ae:AE-1|told:crit:hospitalisation",
            "SAE-01|ae:AE-1|told:grade:2",
            "SAE-02|open|ae:AE-1",
            "SAE-03",
        }
    )
    assert [c.ae_ref for c in state.sae_clocks] == ["AE-1"]


def test_correction_of_latest_ae_report_is_evaluated() -> None:
    """A correction that makes an AE serious is evaluated like an update (no missed SAE)."""
    pid = unique("P")
    report = ae_reported(pid, ae_ref="AE-1")
    replacement = {
        "ae_ref": "AE-1",
        "term": "Sepsis",
        "ctcae_grade": 3,
        "seriousness_criteria": ["hospitalisation"],
    }
    correction = FactCorrected(
        **envelope(pid),
        payload={
            "supersedes_event_id": report.event_id,
            "reason": "transcription error",
            "replacement": replacement,
        },
    )

    _, signals = replay([enrolled(pid), report, correction])

    assert [(s.payload.rule_id, s.causation_id) for s in signals] == [
        ("SAE-01", correction.event_id)
    ]
    assert signals[0].payload.evidence_event_ids == (report.event_id, correction.event_id)


def test_retraction_of_a_single_report_removes_the_ae() -> None:
    """A retraction (no replacement) of an AE known from one report removes it from the state."""
    pid = unique("P")
    report = ae_reported(pid, ae_ref="AE-1")
    state = evolve(None, report)
    retraction = FactCorrected(
        **envelope(pid), payload={"supersedes_event_id": report.event_id, "reason": "duplicate"}
    )

    assert evolve(state, retraction).adverse_events == ()


def test_retraction_of_an_ae_update_changes_nothing() -> None:
    """Retracting an AE update leaves the AE as it is: its state before the update is not kept."""
    pid = unique("P")
    report = ae_reported(pid, ae_ref="AE-1")
    update = ae_reported(pid, ae_ref="AE-1")
    state = evolve(evolve(None, report), update)
    retraction = FactCorrected(
        **envelope(pid), payload={"supersedes_event_id": update.event_id, "reason": "duplicate"}
    )

    assert evolve(state, retraction).adverse_events == state.adverse_events


def test_a_failing_rule_is_isolated_and_reported() -> None:
    """A rule that raises (a defect) does not silence the others; SYS-01 names it for the SO."""

    def broken(state: ParticipantState, fact: ClinicalFact) -> engine.Step:
        raise KeyError("boom")

    rules = engine.RuleSet(DEFAULT_CONFIG, (Rule("BROKEN-01", 1, broken), *RULES))
    pid = unique("P")
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,), outcome=Outcome.FATAL)

    outcome = evaluate_guarded(None, fact, rules)

    assert outcome.failed == ("BROKEN-01:KeyError",)
    assert [s.payload.rule_id for s in outcome.signals] == ["SAE-01", "SAE-03", "SYS-01"]
    system = outcome.signals[-1]
    assert system.payload.evidence_event_ids == (fact.event_id,)
    assert system.payload.recipients == ("safety_officer",)
    assert "boom" not in system.payload.reason


def test_a_failing_projection_keeps_the_old_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the projection itself raises, the state is unchanged and SYS-01 says so."""

    def broken(state: ParticipantState | None, fact: ClinicalFact) -> ParticipantState:
        raise ValueError

    monkeypatch.setattr(engine, "evolve", broken)
    pid = unique("P")
    before = engine.initial_state(lab(pid))

    outcome = evaluate_guarded(before, lab(pid))

    assert outcome.state == before
    assert outcome.failed == ("evolve:ValueError",)
    assert [s.payload.rule_id for s in outcome.signals] == ["SYS-01"]
