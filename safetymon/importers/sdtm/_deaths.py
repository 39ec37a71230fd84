"""Deaths that DM (DTHFL, DTHDTC) or DS (DSDECOD = DEATH) record, to `death_recorded` (pure).

A death may be known to DM, to DS, or to both: it is one fact per participant whichever says
it, under one `source_ref` (`DEATH:<USUBJID>`), so importing DM and DS together, apart or twice
gives one death and ingest answers `duplicate` for the rest. Neither domain names a cause, so
the category is `unknown`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Final

from safetymon.importers._types import Mapped, MappingError, Outcome, Unmapped
from safetymon.importers.sdtm._common import Row, envelope, site_for, when
from safetymon.importers.sdtm._study import Study

_PRECISION: Final = ("year", "month", "day", "hour", "minute", "second")


def died(row: Row) -> bool:
    """DM says the participant died: DTHFL = Y, or a date of death without the flag."""
    return row.get("DTHFL", "").strip().upper() == "Y" or bool(row.get("DTHDTC", "").strip())


def _is_death(row: Row) -> bool:
    return row.get("DSDECOD", "").strip().upper() == "DEATH"


def map_deaths(
    dm: Iterable[Row], ds: Iterable[Row], study: Study, *, sites: Mapping[str, str]
) -> Iterator[Outcome]:
    """One outcome per DS record, then one per death that only DM records.

    A DS record that is no death, or a second DEATH record of one participant, is listed as
    skipped; the first DEATH record carries the participant's death (with DM's date, if any).
    """
    in_dm = {row.get("USUBJID", "").strip(): row for row in dm if died(row)}
    carried: dict[str, str] = {}
    for row in ds:
        subject = row.get("USUBJID", "").strip()
        record = f"DS:{subject}:DSSEQ={row.get('DSSEQ', '').strip()}"
        decod = row.get("DSDECOD", "").strip().upper()
        if not _is_death(row):
            reason = f"disposition {decod or 'none'!r}: only a death is imported from DS"
            yield Unmapped(record, "DSDECOD", reason, "skipped")
        elif subject in carried:
            reason = f"this participant's death is already recorded by {carried[subject]}"
            yield Unmapped(record, "DSDECOD", reason, "skipped")
        else:
            carried[subject] = record
            yield _death(record, (in_dm.get(subject), row), study, sites=sites)
    for subject, row in in_dm.items():
        if subject not in carried:
            yield _death(f"DM:{subject}:death", (row, None), study, sites=sites)


def only_in_dm(dm: Iterable[Row], ds: Iterable[Row]) -> int:
    """How many deaths DM records that no DS DEATH record does (each is one more record)."""
    in_ds = {r.get("USUBJID", "").strip() for r in ds if _is_death(r)}
    return len({r.get("USUBJID", "").strip() for r in dm if died(r)} - in_ds)


def _death(
    record: str, told: tuple[Row | None, Row | None], study: Study, *, sites: Mapping[str, str]
) -> Outcome:
    dm, ds = told
    row = dm if dm is not None else ds
    if row is None:  # both callers pass one; the type does not say so
        return Unmapped(record, "USUBJID", "neither DM nor DS holds this death")
    try:
        occurred, reported = _date_of_death(dm, ds, study)
        subject = row["USUBJID"].strip()
        submission = envelope(
            row,
            study,
            event_type="death_recorded",
            site=site_for(row, sites),
            occurred_at=occurred,
            source_ref=f"DEATH:{subject}",
            payload={"cause_category": "unknown", "occurred_at_as_reported": reported},
        )
    except MappingError as exc:
        return Unmapped(record, exc.field, exc.reason)
    said = "+".join(name for name, r in (("DM", dm), ("DS", ds)) if r is not None)
    return Mapped(record, submission, f"DEATH:{said}")


def _date_of_death(dm: Row | None, ds: Row | None, study: Study) -> tuple[datetime, dict[str, Any]]:
    """DM's DTHDTC, or DS's DSSTDTC when DM has none or a coarser one (a partial date).

    Returns the instant and how the source reported it (the payload's `occurred_at_as_reported`).

    DTHDTC is SDTM's date of death; DSSTDTC of the DEATH record is the same event's date and
    may be the more precise. On equal precision DM wins, so the choice never depends on order.
    """
    found: list[tuple[datetime, dict[str, Any]]] = []
    for row, name in ((dm, "DTHDTC"), (ds, "DSSTDTC")):
        if row is not None and row.get(name, "").strip():
            found.append(when(row, name, study))
    if not found:
        field = "DSSTDTC" if ds is not None else "DTHDTC"
        raise MappingError(field, "a death without its date (DM DTHDTC or DS DSSTDTC)")
    return max(found, key=lambda pair: _PRECISION.index(pair[1]["precision"]))
