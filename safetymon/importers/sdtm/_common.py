"""Helpers shared by the SDTM domain mappers: envelope, numbers, units (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from safetymon.importers._types import MappingError
from safetymon.importers.dates import complete, iso_utc
from safetymon.importers.sdtm._study import Study

#: One SDTM record with every value as text ('' when missing), whichever file it came from.
Row = Mapping[str, str]

#: SDTM standard units that are not UCUM codes, spelled as UCUM. Units not listed go to
#: ingest unchanged: it knows the UCUM ones and rejects the rest with a reason.
SDTM_UNITS: Final[dict[str, str]] = {
    "GI/L": "10*9/L",
    "TI/L": "10*12/L",
    "BEATS/MIN": "/min",
    "BREATHS/MIN": "/min",
    "C": "Cel",
    "F": "[degF]",
    "MMHG": "mm[Hg]",
    "IU/L": "[IU]/L",
    "FRACTION": "1",
}


def ucum(unit: str) -> str:
    """The UCUM spelling of an SDTM unit (unchanged when it has none we know)."""
    return SDTM_UNITS.get(unit.strip().upper(), unit.strip())


def sequence(row: Row, name: str) -> int:
    """The --SEQ of a record as an integer (`1`, `1.0` and `1.00` are one record)."""
    text = row.get(name, "").strip()
    try:
        value = float(text)
    except ValueError as exc:
        raise MappingError(name, f"{text!r} is not a sequence number") from exc
    if not value.is_integer() or value < 0:
        raise MappingError(name, f"{text!r} is not a sequence number")
    return int(value)


def number(row: Row, name: str) -> float | None:
    """A numeric SDTM value, or None when empty."""
    text = row.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise MappingError(name, f"{text!r} is not a number") from exc
    if not math.isfinite(value):
        raise MappingError(name, f"{text!r} is not a finite number")
    return value


def when(row: Row, name: str, study: Study) -> tuple[datetime, dict[str, Any]]:
    """A --DTC value completed to an instant, with how it was completed."""
    return complete(row.get(name, ""), field=name, zone=study.zone)


def source_of(row: Row, study: Study) -> str:
    """The `source` of every event from one study: stable, so a re-import is a duplicate."""
    return study.source or f"sdtm-{row.get('STUDYID', '').strip().lower() or 'unknown'}"


def envelope(  # noqa: PLR0913 - one keyword per envelope field reads best
    row: Row,
    study: Study,
    *,
    event_type: str,
    site: str,
    occurred_at: datetime,
    source_ref: str,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """A `Submission`-shaped dict for one record."""
    return {
        "event_type": event_type,
        "trial_id": study.trial_id,
        "site_id": site,
        "participant_id": row["USUBJID"].strip(),
        "occurred_at": iso_utc(occurred_at),
        "source": source_of(row, study),
        "source_ref": source_ref,
        "payload": payload,
    }


def site_for(row: Row, sites: Mapping[str, str]) -> str:
    """The participant's site from DM (the other domains do not carry SITEID)."""
    subject = row.get("USUBJID", "").strip()
    site = sites.get(subject)
    if site is None:
        raise MappingError("USUBJID", f"{subject!r} is not in DM, so its site is unknown")
    return site
