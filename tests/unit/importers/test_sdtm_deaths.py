"""Deaths that only DM (DTHFL, DTHDTC) or DS (DSDECOD = DEATH) record become `death_recorded`.

One death per participant whichever domain says it, under a source_ref that does not depend on
the domain, so a re-import (or DM and DS imported apart) is a duplicate at ingest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyreadstat
import pytest

from safetymon.importers._types import Mapped, Outcome, Unmapped
from safetymon.importers.files import find_sdtm, read_table, read_toml
from safetymon.importers.sdtm import map_deaths, map_study, record_count, study_from_toml
from services.ingest.core.accept import Accepted, accept
from services.ingest.core.dedupe import compared_form

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "cdiscpilot01"
STUDY = study_from_toml({"timezone": "Asia/Shanghai", "arms": {"PBO": "A"}})
SITES = {"S-1": "701", "S-2": "702"}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _dm(subject: str = "S-1", **values: str) -> dict[str, str]:
    row = {"STUDYID": "PILOT", "USUBJID": subject, "SITEID": SITES.get(subject, "")}
    return row | {"ARMCD": "PBO", "RFSTDTC": "2014-01-02", "DTHFL": "", "DTHDTC": ""} | values


def _ds(subject: str = "S-1", seq: str = "1", **values: str) -> dict[str, str]:
    row = {"STUDYID": "PILOT", "USUBJID": subject, "DSSEQ": seq, "DSCAT": "DISPOSITION EVENT"}
    return row | {"DSDECOD": "DEATH", "DSTERM": "DEATH", "DSSTDTC": "2014-03-02"} | values


def _deaths(dm: list[dict[str, str]], ds: list[dict[str, str]]) -> list[Outcome]:
    return list(map_deaths(dm, ds, STUDY, sites=SITES))


def _mapped(outcomes: list[Outcome]) -> list[Mapped]:
    return [o for o in outcomes if isinstance(o, Mapped)]


def test_a_death_known_only_to_dm_is_recorded_in_the_study_zone() -> None:
    (out,) = _deaths([_dm(DTHFL="Y", DTHDTC="2014-03-02"), _dm("S-2")], [])

    assert isinstance(out, Mapped)
    assert out.record_id == "DM:S-1:death"
    assert out.submission == {
        "event_type": "death_recorded",
        "trial_id": "NCT01724398",
        "site_id": "701",
        "participant_id": "S-1",
        "occurred_at": "2014-03-01T16:00:00Z",  # midnight in Shanghai
        "source": "sdtm-pilot",
        "source_ref": "DEATH:S-1",
        "payload": {
            "cause_category": "unknown",
            "occurred_at_as_reported": {
                "as_reported": "2014-03-02",
                "precision": "day",
                "imputation": "start_of_period",
                "timezone_assumed": "Asia/Shanghai",
            },
        },
    }
    assert out.tag == "DEATH:DM"


def test_a_death_known_only_to_ds_is_recorded_and_other_dispositions_are_listed() -> None:
    outcomes = _deaths([_dm()], [_ds(seq="1", DSDECOD="COMPLETED"), _ds(seq="2")])

    completed, death = outcomes
    assert completed == Unmapped(
        "DS:S-1:DSSEQ=1",
        "DSDECOD",
        "disposition 'COMPLETED': only a death is imported from DS",
        "skipped",
    )
    assert isinstance(death, Mapped)
    assert (death.record_id, death.tag) == ("DS:S-1:DSSEQ=2", "DEATH:DS")
    assert death.submission["source_ref"] == "DEATH:S-1"


def test_dm_and_ds_saying_it_twice_is_one_death_with_the_same_key_as_either_alone() -> None:
    dm, ds = _dm(DTHFL="Y", DTHDTC="2014-03-02"), _ds()

    both = _mapped(_deaths([dm], [ds, _ds(seq="2", DSCAT="OTHER EVENT")]))
    dm_only, ds_only = _mapped(_deaths([dm], [])), _mapped(_deaths([_dm()], [ds]))

    assert len(both) == 1
    assert both[0].tag == "DEATH:DM+DS"
    verdicts = [accept(o.submission, recorded_at=NOW, actor="t") for o in both + dm_only + ds_only]
    accepted = [v for v in verdicts if isinstance(v, Accepted)]
    # Same event id and same compared content: ingest answers `duplicate` to the later ones.
    assert len({a.fact.event_id for a in accepted}) == 1
    assert len({compared_form(a.wire) for a in accepted}) == 1
    assert len(accepted) == 3


def test_the_second_ds_death_record_is_listed_as_already_recorded() -> None:
    outcomes = _deaths([], [_ds(seq="4"), _ds(seq="5")])

    assert isinstance(outcomes[0], Mapped)
    assert outcomes[1] == Unmapped(
        "DS:S-1:DSSEQ=5",
        "DSDECOD",
        "this participant's death is already recorded by DS:S-1:DSSEQ=4",
        "skipped",
    )


@pytest.mark.parametrize(
    ("dthdtc", "dsstdtc", "occurred_at", "as_reported", "precision"),
    [
        ("2014-03", "2014-03-09", "2014-03-08T16:00:00Z", "2014-03-09", "day"),  # DS refines
        ("2014-03-09", "2014-03", "2014-03-08T16:00:00Z", "2014-03-09", "day"),  # DM's is finer
        ("2014-03-09", "2014-03-10", "2014-03-08T16:00:00Z", "2014-03-09", "day"),  # tie: DM
        ("", "2014", "2013-12-31T16:00:00Z", "2014", "year"),  # a year alone: its first instant
    ],
)
def test_the_more_precise_date_wins_and_a_partial_one_is_completed_to_its_start(
    dthdtc: str, dsstdtc: str, occurred_at: str, as_reported: str, precision: str
) -> None:
    (out,) = _mapped(_deaths([_dm(DTHFL="Y", DTHDTC=dthdtc)], [_ds(DSSTDTC=dsstdtc)]))

    assert out.submission["occurred_at"] == occurred_at
    reported = out.submission["payload"]["occurred_at_as_reported"]
    assert (reported["as_reported"], reported["precision"]) == (as_reported, precision)


def test_a_death_without_any_date_is_rejected_naming_the_field() -> None:
    (from_dm,) = _deaths([_dm(DTHFL="Y")], [])
    (from_ds,) = _deaths([_dm(DTHFL="Y")], [_ds(DSSTDTC="")])
    (bad,) = _deaths([_dm(DTHFL="Y", DTHDTC="2014-02-30")], [])

    assert isinstance(from_dm, Unmapped)
    assert (from_dm.field, from_dm.status) == ("DTHDTC", "rejected")
    assert "without its date" in from_dm.reason
    assert isinstance(from_ds, Unmapped)
    assert from_ds.field == "DSSTDTC"
    assert isinstance(bad, Unmapped)
    assert (bad.field, bad.status) == ("DTHDTC", "rejected")


def test_a_ds_death_of_a_subject_not_in_dm_is_rejected() -> None:
    (out,) = _deaths([], [_ds("S-9")])

    assert isinstance(out, Unmapped)
    assert out.field == "USUBJID"


def test_the_study_count_includes_each_ds_row_and_each_death_only_dm_knows() -> None:
    dm = [_dm(DTHFL="Y", DTHDTC="2014-03-02"), _dm("S-2", DTHFL="Y", DTHDTC="2014-04-01")]
    domains = {"DM": dm, "DS": [_ds(seq="1", DSDECOD="COMPLETED"), _ds(seq="2")]}

    outcomes = list(map_study(domains, STUDY))

    assert len(outcomes) == record_count(domains) == 2 + 2 + 1  # DM rows, DS rows, S-2
    assert sorted(m.tag for m in _mapped(outcomes) if m.tag.startswith("DEATH")) == [
        "DEATH:DM",
        "DEATH:DM+DS",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["sdtm_original", "tdf_update2"])
def test_the_pilot_deaths_match_dm_and_ds_and_pass_ingest(folder: str) -> None:
    """Counted from DM and DS with pyreadstat: 3 deaths, each in both domains, same dates."""
    dm_frame, _ = pyreadstat.read_xport(str(DATA / folder / "dm.xpt"))
    ds_frame, _ = pyreadstat.read_xport(str(DATA / folder / "ds.xpt"))
    dead = dm_frame[dm_frame["DTHFL"] == "Y"]
    in_dm = dict(zip(dead["USUBJID"], dead["DTHDTC"], strict=True))
    ds_deaths = ds_frame[ds_frame["DSDECOD"] == "DEATH"]
    in_ds = dict(zip(ds_deaths["USUBJID"], ds_deaths["DSSTDTC"], strict=True))
    assert (len(in_dm), in_dm) == (3, in_ds)  # the pilot: DM and DS agree on all three
    study = study_from_toml(read_toml(ROOT / "safetymon/importers/mappings/cdiscpilot01.toml"))
    found = find_sdtm([DATA / folder])
    domains = {name: [r for p in found[name] for r in read_table(p)] for name in ("DM", "DS")}

    outcomes = list(map_study(domains, study))

    deaths = [m for m in _mapped(outcomes) if m.submission["event_type"] == "death_recorded"]
    assert {m.submission["participant_id"]: m.submission["occurred_at"] for m in deaths} == {
        subject: f"{day}T00:00:00Z" for subject, day in in_dm.items()
    }
    assert {m.tag for m in deaths} == {"DEATH:DM+DS"}
    skipped = [o for o in outcomes if isinstance(o, Unmapped) and o.field == "DSDECOD"]
    assert len(skipped) == len(ds_frame) - len(ds_deaths)
    verdicts = [accept(m.submission, recorded_at=NOW, actor="t") for m in deaths]
    wires: list[dict[str, Any]] = [v.wire for v in verdicts if isinstance(v, Accepted)]
    assert [w["payload"] for w in wires] == [
        {
            "cause_category": "unknown",
            "related_ae_ref": None,
            "occurred_at_as_reported": {
                "as_reported": in_dm[w["participant_id"]],
                "precision": "day",
                "imputation": "start_of_period",
                "timezone_assumed": "UTC",
            },
        }
        for w in wires
    ]
    assert len(wires) == 3
