"""Follow-up reports of one AE case (ICH E2D): one SAE page per case, updates on news only.

An SDTM feed (AESPID), FHIR (AdverseEvent.identifier) or a CSV column gives every record
of one case the same `case_id` while each keeps its own `ae_ref`. The CDISC pilot has 4
serious records that are follow-ups of a serious case already seen; each paged U0 again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyreadstat
import pytest

from safetymon.importers._types import Mapped
from safetymon.importers.files import read_table
from safetymon.importers.sdtm import map_ae, study_from_toml, supplemental
from schemas import (
    LOG_FACT_ADAPTER,
    AdverseEventReported,
    Outcome,
    Role,
    SAEReportedToSponsor,
    SeriousnessCriterion,
    SignalRaised,
    Urgency,
    canonical_bytes,
)
from services.ingest.core.accept import Accepted, accept
from services.rules.core.fold import replay

from .factories import T0, ae_payload, enrolled, envelope, unique
from .test_sae_clock import tick

S = SeriousnessCriterion
AWARE = T0 + timedelta(hours=1)
PILOT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "cdiscpilot01"
CRITERIA = ["AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG"]
GRADE = {"MILD": 1, "MODERATE": 2, "SEVERE": 3}


def record(pid: str, ref: str, case: str | None = "C-1", **payload: Any) -> AdverseEventReported:
    """One record of case `case`: a new `adverse_event_reported` with its own ref."""
    body = ae_payload(ref, awareness_at=AWARE, **payload)
    if case is not None:
        body["case_id"] = case
    return AdverseEventReported(**envelope(pid, at=T0), payload=body)


def sae01(signals: Any) -> list[SignalRaised]:
    return [s for s in signals if s.payload.rule_id == "SAE-01"]


def pages(signals: Any) -> list[SignalRaised]:
    return [s for s in sae01(signals) if "case_update" not in s.payload.values]


def updates(signals: Any) -> list[SignalRaised]:
    return [s for s in sae01(signals) if "case_update" in s.payload.values]


def test_a_follow_up_record_of_a_paged_case_pages_no_one_again() -> None:
    pid = unique("P")
    first = record(pid, "AE-1", criteria=(S.HOSPITALISATION,), grade=3)
    follow_up = record(
        pid, "AE-2", criteria=(S.HOSPITALISATION,), grade=3, outcome=Outcome.RECOVERED
    )

    states, signals = replay([enrolled(pid), first, follow_up])

    assert [s.causation_id for s in pages(signals)] == [first.event_id]
    assert updates(signals) == []
    state = next(iter(states.values()))
    assert [c.ae_ref for c in state.sae_clocks] == ["AE-1"]  # one SAE-02 clock per case


def test_records_of_two_cases_page_twice_and_a_record_without_case_is_its_own_case() -> None:
    pid = unique("P")
    facts = [
        enrolled(pid),
        record(pid, "AE-1", criteria=(S.HOSPITALISATION,)),
        record(pid, "AE-2", case="C-2", criteria=(S.HOSPITALISATION,)),
        record(pid, "AE-3", case=None, criteria=(S.HOSPITALISATION,)),
    ]

    _, signals = replay(facts)

    assert [s.payload.values["ae_ref"] for s in pages(signals)] == ["AE-1", "AE-2", "AE-3"]


def test_a_fatal_follow_up_is_an_update_threaded_under_the_first_page_and_sae03_pages() -> None:
    pid = unique("P")
    first = record(pid, "AE-1", criteria=(S.HOSPITALISATION,), grade=3)
    fatal = record(
        pid, "AE-2", criteria=(S.HOSPITALISATION, S.DEATH), grade=5, outcome=Outcome.FATAL
    )

    _, signals = replay([enrolled(pid), first, fatal])

    (page,) = pages(signals)
    (update,) = updates(signals)
    assert update.causation_id == fatal.event_id
    assert (update.payload.urgency, update.payload.recipients) == (
        Urgency.U1,
        (Role.INVESTIGATOR, Role.SAFETY_OFFICER),
    )
    (death,) = [s for s in signals if s.payload.rule_id == "SAE-03"]  # the death's one page
    assert (death.causation_id, death.payload.urgency) == (fatal.event_id, Urgency.U0)
    assert update.payload.values["thread_signal_id"] == str(page.event_id)
    assert update.payload.values["case_id"] == "C-1"
    assert update.payload.values["case_update"] == "fatal,new criterion death,CTCAE grade 3 -> 5"


def test_a_new_criterion_or_a_higher_grade_is_a_u1_update_and_repeats_say_nothing() -> None:
    pid = unique("P")
    facts = [
        enrolled(pid),
        record(pid, "AE-1", criteria=(S.HOSPITALISATION,), grade=2),
        record(pid, "AE-2", criteria=(S.HOSPITALISATION, S.LIFE_THREATENING), grade=2),
        record(pid, "AE-3", criteria=(S.HOSPITALISATION,), grade=3),
        record(pid, "AE-4", criteria=(S.HOSPITALISATION, S.LIFE_THREATENING), grade=3),
        record(pid, "AE-5", criteria=(S.HOSPITALISATION,), grade=1, outcome=Outcome.RECOVERED),
    ]

    _, signals = replay(facts)

    assert len(pages(signals)) == 1
    assert [(s.payload.urgency, s.payload.values["case_update"]) for s in updates(signals)] == [
        (Urgency.U1, "new criterion life_threatening"),
        (Urgency.U1, "CTCAE grade 2 -> 3"),
    ]


def test_a_non_serious_first_record_then_a_serious_follow_up_pages_once() -> None:
    pid = unique("P")
    first = record(pid, "AE-1", grade=2)
    serious = record(pid, "AE-2", criteria=(S.HOSPITALISATION,), grade=2)

    _, signals = replay(
        [enrolled(pid), first, serious, record(pid, "AE-3", criteria=(S.HOSPITALISATION,))]
    )

    assert [s.causation_id for s in pages(signals)] == [serious.event_id]
    assert updates(signals) == []


def test_a_follow_up_is_not_a_second_susar() -> None:
    pid = unique("P")
    suspected = {"relatedness": "probable", "expectedness": "unexpected"}
    facts = [
        enrolled(pid),
        record(pid, "AE-1", criteria=(S.HOSPITALISATION,), **suspected),
        record(pid, "AE-2", criteria=(S.HOSPITALISATION,), outcome=Outcome.RECOVERED, **suspected),
    ]

    _, signals = replay(facts)

    assert [s.payload.values["ae_ref"] for s in signals if s.payload.rule_id == "SAE-04"] == [
        "AE-1"
    ]


def test_the_case_clock_stops_when_any_of_its_records_is_reported_to_the_sponsor() -> None:
    pid = unique("P")
    facts: list[Any] = [
        enrolled(pid),
        record(pid, "AE-1", criteria=(S.HOSPITALISATION,)),
        record(pid, "AE-2", criteria=(S.HOSPITALISATION,)),
        SAEReportedToSponsor(**envelope(pid, at=AWARE), payload={"ae_ref": "AE-2"}),
    ]
    facts.append(tick(AWARE + timedelta(hours=25)))

    states, signals = replay(facts)

    assert [s for s in signals if s.payload.rule_id == "SAE-02"] == []
    assert next(iter(states.values())).sae_clocks == ()


def _pilot_facts() -> list[AdverseEventReported]:
    """The pilot's AE file through the SDTM importer and ingest, as the rules read it."""
    rows = read_table(PILOT / "sdtm_original" / "ae.xpt")
    supp = supplemental(read_table(PILOT / "sdtm_original" / "suppae.xpt"))
    study = study_from_toml({"arms": {"PBO": "A"}})
    mapped = map_ae(rows, supp, study, sites={r["USUBJID"]: "701" for r in rows})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    facts: list[AdverseEventReported] = []
    for i, outcome in enumerate(o for o in mapped if isinstance(o, Mapped)):
        accepted = accept(outcome.submission, recorded_at=now + timedelta(seconds=i), actor="t")
        assert isinstance(accepted, Accepted), accepted
        fact = LOG_FACT_ADAPTER.validate_json(canonical_bytes(accepted.wire))
        assert isinstance(fact, AdverseEventReported), fact
        facts.append(fact)
    return facts


def _expected_from_the_file() -> dict[str, int]:
    """Counted from the AE file with pandas, in file order (the order records are sent).

    A page: the first serious record of a (USUBJID, AESPID) case. An update: a later
    serious record of a paged case with a criterion or a severity (MILD 1, MODERATE 2,
    SEVERE 3) not seen on the case's earlier serious records, or death.
    """
    frame, _ = pyreadstat.read_xport(str(PILOT / "sdtm_original" / "ae.xpt"))
    told: dict[tuple[str, str], tuple[set[str], int]] = {}
    counts = {"serious_records": 0, "cases": 0, "pages": 0, "updates": 0}
    for _, row in frame.iterrows():
        criteria = {c for c in CRITERIA if row[c] == "Y"}
        if not criteria and row["AESER"] == "Y":
            criteria = {"AESER"}
        if not criteria:
            continue
        counts["serious_records"] += 1
        case, grade = (row["USUBJID"], row["AESPID"]), GRADE[row["AESEV"]]
        if case not in told:
            counts["cases"] += 1
            counts["pages"] += 1
            told[case] = (criteria, grade)
            continue
        seen, worst = told[case]
        counts["updates"] += bool(criteria - seen or grade > worst or "AESDTH" in criteria - seen)
        told[case] = (seen | criteria, max(worst, grade))
    return counts


@pytest.mark.slow
def test_the_cdisc_pilot_pages_once_per_serious_case() -> None:
    """36 serious records in 32 cases: 32 pages; of the 4 follow-ups one upgrades (1 update).

    Before cases, every serious record paged: 36 pages.
    """
    facts = _pilot_facts()

    _, signals = replay(facts)

    serious = [f for f in facts if f.payload.seriousness_criteria]
    found = {
        "serious_records": len(serious),
        "cases": len({(f.participant_id, f.payload.case_id) for f in serious}),
        "pages": len(pages(signals)),
        "updates": len(updates(signals)),
    }
    assert found == _expected_from_the_file()
    assert found == {"serious_records": 36, "cases": 32, "pages": 32, "updates": 1}
    (update,) = updates(signals)
    assert update.payload.urgency is Urgency.U1
    assert update.payload.values["case_update"] == "CTCAE grade 1 -> 3"
    assert update.payload.values["case_id"] == "01-709-1259.AESPID.E08"
