"""The rules and the DSMB report classify every AE the same way (one clinical definition).

Two levels. Predicate level: for generated AE values, every `clinical.adverse_events`
predicate and every AESI category gives the same answer in Python (what the rules call) and
in the SQL generated for the report, run by DuckDB. Feed level: generated AE histories
(reports, then full-state updates) are ingested into a real event log, folded by the rules'
engine and extracted by the report's DuckDB source; the report's SAE table, SUSAR flags and
serious/fatal/related counts equal what the rules' final AE states say.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinical import adverse_events as ae_class
from clinical import ae_terms, codes
from schemas import Causality, Expectedness, Outcome, SeriousnessCriterion
from services.report.adapters.duckdb_source import DuckDBLogSource
from services.report.core.config import ReportConfig
from services.rules.core.fold import replay
from tests.unit.report.eventlog import build_event_log, running_clock

CRITERIA = [c.value for c in SeriousnessCriterion]
CAUSALITY = [c.value for c in Causality]
EXPECTEDNESS = [e.value for e in Expectedness]
OUTCOMES = [o.value for o in Outcome]
#: Catalogue terms in reported spellings, plus terms no list holds.
TERMS = sorted(
    {
        *codes.HE_TERMS,
        *codes.BLEEDING_TERMS,
        *codes.IR_MSC_TERMS,
        *codes.CITRATE_TERMS,
        *ae_terms.AKI_TERMS,
        "Oesophageal varices haemorrhage",
        "Catheter-related infection",
        "Urinary tract infection",
        "Spontaneous bacterial peritonitis",
        "Hypotension",
        "Insomnia",
        "Nausea",
    }
)
LLTS = sorted({*codes.HE_LLT, *codes.BLEEDING_LLT, *codes.INFECTION_LLT, *codes.IR_MSC_LLT})


@dataclass(frozen=True)
class _Ae:
    ctcae_grade: int
    seriousness_criteria: tuple[str, ...]
    planned_admission_for_procedure: bool
    relatedness_uc_msc: str
    relatedness_plasma_exchange: str
    expectedness: str
    outcome: str


ae_values = st.builds(
    _Ae,
    ctcae_grade=st.integers(1, 5),
    seriousness_criteria=st.lists(st.sampled_from(CRITERIA), max_size=3, unique=True).map(tuple),
    planned_admission_for_procedure=st.booleans(),
    relatedness_uc_msc=st.sampled_from(CAUSALITY),
    relatedness_plasma_exchange=st.sampled_from(CAUSALITY),
    expectedness=st.sampled_from(EXPECTEDNESS),
    outcome=st.sampled_from(OUTCOMES),
)
_PYTHON = {
    "serious": ae_class.is_serious,
    "fatal": ae_class.is_fatal,
    "life_threatening": ae_class.is_life_threatening,
    "related_uc_msc": ae_class.is_related_to_uc_msc,
    "related_pe": ae_class.is_related_to_plasma_exchange,
    "related": ae_class.is_related,
    "unexpected": ae_class.is_unexpected,
    "susar_candidate": ae_class.is_susar_candidate,
}


def test_every_predicate_has_a_python_twin() -> None:
    assert set(ae_class.predicates()) == set(_PYTHON)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(ae=ae_values)
def test_python_and_sql_classify_an_ae_alike(ae: _Ae) -> None:
    sql = ae_class.predicates()
    names = sorted(sql)
    query = (
        "SELECT "
        + ", ".join(f"{sql[n]} AS {n}" for n in names)
        + f", {ae_class.qualifying_criteria_sql()} FROM (SELECT ?::VARCHAR[] AS criteria_list, "
        "?::BOOLEAN AS planned, ?::INTEGER AS grade, ?::VARCHAR AS outcome, "
        "?::VARCHAR AS rel_msc, ?::VARCHAR AS rel_pe, ?::VARCHAR AS expectedness)"
    )
    args = [
        list(ae.seriousness_criteria),
        ae.planned_admission_for_procedure,
        ae.ctcae_grade,
        ae.outcome,
        ae.relatedness_uc_msc,
        ae.relatedness_plasma_exchange,
        ae.expectedness,
    ]
    with duckdb.connect(":memory:") as con:
        row = con.execute(query, args).fetchone()
    assert row is not None
    assert dict(zip(names, row[:-1], strict=True)) == {n: _PYTHON[n](ae) for n in names}
    assert tuple(row[-1]) == ae_class.qualifying_criteria(ae)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    term=st.sampled_from(TERMS) | st.text(max_size=30),
    llt=st.none() | st.sampled_from(LLTS),
    windows=st.sets(st.sampled_from(["msc_reaction", "pe_reaction"])),
)
def test_python_and_sql_put_an_ae_in_the_same_aesi_categories(
    term: str, llt: str | None, windows: set[str]
) -> None:
    flags = ", ".join(f"{w in windows} AS in_{w}" for w in ("msc_reaction", "pe_reaction"))
    cases = ", ".join(f"({ae_terms.category_sql(c)}) AS {c.key}" for c in ae_terms.AESI)
    query = (
        f"SELECT {cases} FROM (SELECT {ae_terms.normalise_term_sql('?')} AS nterm, "
        f"?::VARCHAR AS llt, {flags})"
    )
    with duckdb.connect(":memory:") as con:
        row = con.execute(query, [term, llt]).fetchone()
    assert row is not None
    in_sql = tuple(c.key for c, hit in zip(ae_terms.AESI, row, strict=True) if hit)
    assert in_sql == ae_terms.categories_of(term, llt, windows)


def test_a_planned_admission_that_is_life_threatening_is_serious_in_both() -> None:
    """The disagreement this kernel fixed: SQL dropped every planned AE from the SAE table."""
    ae = _Ae(4, ("hospitalisation", "life_threatening"), True, "possible", "not_applicable",
             "unexpected", "recovering")  # fmt: skip
    assert ae_class.is_serious(ae)
    assert ae_class.qualifying_criteria(ae) == ("life_threatening",)
    assert not ae_class.is_serious(replace_criteria(ae, ("hospitalisation",)))


def replace_criteria(ae: _Ae, criteria: tuple[str, ...]) -> _Ae:
    return _Ae(ae.ctcae_grade, criteria, ae.planned_admission_for_procedure,
               ae.relatedness_uc_msc, ae.relatedness_plasma_exchange, ae.expectedness,
               ae.outcome)  # fmt: skip


# --- feed level --------------------------------------------------------------------------

TRIAL = "NCT01724398"
START = datetime(2024, 3, 1, tzinfo=UTC)


def _item(
    kind: str, participant: str, at: datetime, ref: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_type": kind, "trial_id": TRIAL, "site_id": "S01", "participant_id": participant,
        "occurred_at": at.isoformat().replace("+00:00", "Z"), "source": "edc",
        "source_ref": ref, "payload": payload,
    }  # fmt: skip


def _payload(ref: str, ae: _Ae) -> dict[str, Any]:
    return {
        "ae_ref": ref, "term": "Sepsis", "ctcae_grade": ae.ctcae_grade,
        "seriousness_criteria": list(ae.seriousness_criteria),
        "planned_admission_for_procedure": ae.planned_admission_for_procedure,
        "relatedness_uc_msc": ae.relatedness_uc_msc,
        "relatedness_plasma_exchange": ae.relatedness_plasma_exchange,
        "expectedness": ae.expectedness, "outcome": ae.outcome,
    }  # fmt: skip


histories = st.lists(st.lists(ae_values, min_size=1, max_size=3), min_size=1, max_size=6)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories)
def test_the_report_counts_what_the_rules_fold(history: list[list[_Ae]]) -> None:
    items = [_item("participant_enrolled", "P1", START, "rand:P1", {"arm": "A"})]
    for i, versions in enumerate(history):
        onset = START + timedelta(days=1 + i)
        ref = f"AE-{i}"
        for j, version in enumerate(versions):
            kind = "adverse_event_reported" if j == 0 else "adverse_event_updated"
            at = onset if j == 0 else onset + timedelta(hours=j)
            items.append(_item(kind, "P1", at, f"{ref}:{j}", _payload(ref, version)))
            items[-1]["occurred_at"] = onset.isoformat().replace("+00:00", "Z")
    with tempfile.TemporaryDirectory() as tmp:
        path = build_event_log(items, Path(tmp), recorded_at=running_clock())
        extract = DuckDBLogSource(path).extract(datetime(2030, 1, 1, tzinfo=UTC), ReportConfig())
        from services.ingest.core.accept import accept  # the same facts the log holds

        facts = []
        for item in items:
            result = accept(dict(item), recorded_at=START, actor="test")
            facts.append(result.fact)  # type: ignore[union-attr]
    states, _ = replay(facts)
    aes = list(states[(TRIAL, "P1")].adverse_events)
    serious = {a.ae_ref for a in aes if ae_class.is_serious(a)}
    assert {row.ae_ref for row in extract.saes} == serious
    for row in extract.saes:
        ae = next(a for a in aes if a.ae_ref == row.ae_ref)
        assert row.susar == ae_class.is_susar_candidate(ae)
        assert row.criteria == "; ".join(ae_class.qualifying_criteria(ae))
    counts = {c.kind: c.events for c in extract.ae_counts}
    assert counts.get("serious", 0) == len(serious)
    assert counts.get("fatal", 0) == sum(ae_class.is_fatal(a) for a in aes)
    assert counts.get("related", 0) == sum(ae_class.is_related(a) for a in aes)
