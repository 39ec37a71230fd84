"""Site spreadsheets (CSV) to submissions through a documented column mapping (pure).

A mapping file (TOML, see README "Site CSV mapping") names the columns of a lab or AE sheet.
Labs come in long form (one result per row: test, value, unit columns, and a [tests] table of
test name -> LOINC) or wide form (one column per test, a `[[results]]` entry per column).
Times are ISO 8601 (partial allowed), a `datetime_format`, or whole days after `base_date`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from safetymon.importers._case import case_id
from safetymon.importers._types import Mapped, MappingError, Outcome, Unmapped, without_conflicts
from safetymon.importers.dates import complete, iso_utc
from safetymon.importers.sdtm import StudyMappingError, ucum

_CENSORED: Final = re.compile(r"^(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)$")
_AE_COLUMNS: Final = (
    "term",
    "grade",
    "severity",
    "seriousness",
    "outcome",
    "relatedness_uc_msc",
    "relatedness_plasma_exchange",
    "awareness_at",
    "case_id",
)


@dataclass(frozen=True, slots=True)
class WideResult:
    """One column of a wide lab sheet: its LOINC code and unit."""

    column: str
    loinc: str
    unit: str


@dataclass(frozen=True, slots=True)
class CsvMapping:
    """A parsed column mapping."""

    kind: Literal["lab", "adverse_event"]
    source: str
    columns: Mapping[str, str]
    trial_id: str = "NCT01724398"
    site: str | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    participant_prefix: str = ""
    datetime_format: str | None = None
    base_date: date | None = None
    tests: Mapping[str, str] = field(default_factory=dict)
    results: tuple[WideResult, ...] = ()


def mapping_from_toml(data: Mapping[str, Any]) -> CsvMapping:
    """Parse and check a mapping file; a mistake names its key."""
    kind = data.get("kind")
    if kind not in ("lab", "adverse_event"):
        raise StudyMappingError("kind: must be 'lab' or 'adverse_event'")
    if not data.get("source"):
        raise StudyMappingError("source: required (with the record id it makes the dedup key)")
    columns = {str(k): str(v).strip().upper() for k, v in dict(data.get("columns", {})).items()}
    needed = ["participant"] + (["term"] if kind == "adverse_event" else [])
    needed += [] if "day" in columns else ["occurred_at"]
    missing = [name for name in needed if name not in columns]
    if missing:
        raise StudyMappingError(f"columns: {', '.join(missing)} required for kind {kind!r}")
    if "site" not in columns and not data.get("site"):
        raise StudyMappingError("site: give a fixed `site` or a `columns.site` column")
    try:
        zone = ZoneInfo(str(data.get("timezone", "UTC")))
        base = data.get("base_date")
        base_date = date.fromisoformat(str(base)) if base is not None else None
        results = tuple(
            WideResult(str(r["column"]).upper(), str(r["loinc"]), str(r["unit"]))
            for r in data.get("results", ())
        )
    except (ZoneInfoNotFoundError, ValueError, KeyError, TypeError) as exc:
        raise StudyMappingError(f"timezone, base_date or [[results]]: {exc}") from exc
    if kind == "lab" and not results and not {"test", "value", "unit"} <= set(columns):
        raise StudyMappingError("a lab mapping needs columns test/value/unit or [[results]]")
    return CsvMapping(
        kind=kind,
        source=str(data["source"]),
        columns=columns,
        trial_id=str(data.get("trial_id", "NCT01724398")),
        site=None if data.get("site") is None else str(data["site"]),
        zone=zone,
        participant_prefix=str(data.get("participant_prefix", "")),
        datetime_format=data.get("datetime_format"),
        base_date=base_date,
        tests={str(k).strip().upper(): str(v) for k, v in dict(data.get("tests", {})).items()},
        results=results,
    )


def map_rows(
    rows: Iterable[Mapping[str, str]], mapping: CsvMapping, *, origin: str
) -> Iterator[Outcome]:
    """Outcomes of every row (a wide lab row gives one per result column)."""

    def outcomes() -> Iterator[Outcome]:
        for number, row in enumerate(rows, start=1):
            record = f"{origin}:row {number}"
            try:
                yield from _row(row, mapping, record=record)
            except MappingError as exc:
                yield Unmapped(record, exc.field, exc.reason)

    return without_conflicts(outcomes())


def _cell(row: Mapping[str, str], mapping: CsvMapping, name: str) -> str:
    column = mapping.columns.get(name)
    return "" if column is None else row.get(column, "").strip()


def _row(row: Mapping[str, str], mapping: CsvMapping, *, record: str) -> Iterator[Outcome]:
    participant = _cell(row, mapping, "participant")
    if not participant:
        raise MappingError(mapping.columns["participant"], "no participant code")
    head = {
        "trial_id": mapping.trial_id,
        "site_id": _cell(row, mapping, "site") or mapping.site,
        "participant_id": mapping.participant_prefix + participant,
        "source": mapping.source,
    }
    occurred, reported = _when(row, mapping)
    head["occurred_at"] = iso_utc(occurred)
    key = _cell(row, mapping, "record_id") or f"{head['participant_id']}:{reported['as_reported']}"
    if mapping.kind == "adverse_event":
        payload = _ae(row, mapping, ref=key) | {"occurred_at_as_reported": reported}
        code = mapping.participant_prefix + participant
        case = case_id(code, "CASE", _cell(row, mapping, "case_id"))
        if case is not None:
            payload["case_id"] = case
        event = {**head, "event_type": "adverse_event_reported", "source_ref": f"AE:{key}"}
        serious = "serious" if payload["seriousness_criteria"] else "non_serious"
        yield Mapped(record, {**event, "payload": payload}, f"csv:adverse_event:{serious}")
        return
    for test, loinc, result in _results(row, mapping):
        payload = {"loinc": loinc, "result": result, "occurred_at_as_reported": reported}
        for bound in ("reference_low", "reference_high"):
            if _cell(row, mapping, bound):
                payload[bound] = _float(_cell(row, mapping, bound), mapping.columns[bound])
        event = {**head, "event_type": "lab_result_recorded", "source_ref": f"LAB:{key}:{test}"}
        yield Mapped(f"{record}:{test}", {**event, "payload": payload}, f"csv:lab:{loinc}")


def _when(row: Mapping[str, str], mapping: CsvMapping) -> tuple[datetime, dict[str, Any]]:
    if "day" in mapping.columns:
        column = mapping.columns["day"]
        if mapping.base_date is None:
            raise MappingError(column, "a day column needs base_date in the mapping")
        days = _float(_cell(row, mapping, "day"), column)
        text = (mapping.base_date + timedelta(days=int(days))).isoformat()
        return complete(text, field=column, zone=mapping.zone)
    column, text = mapping.columns["occurred_at"], _cell(row, mapping, "occurred_at")
    if mapping.datetime_format and text:
        try:
            parsed = datetime.strptime(text, mapping.datetime_format)
        except ValueError as exc:
            raise MappingError(
                column, f"{text!r} does not match {mapping.datetime_format}"
            ) from exc
        timed = "%H" in mapping.datetime_format
        text = parsed.isoformat(timespec="minutes") if timed else parsed.date().isoformat()
    return complete(text, field=column, zone=mapping.zone)


def _results(row: Mapping[str, str], mapping: CsvMapping) -> list[tuple[str, str, dict[str, Any]]]:
    if mapping.results:
        return [
            (r.column, r.loinc, _value(row.get(r.column, "").strip(), r.unit, r.column))
            for r in mapping.results
            if row.get(r.column, "").strip()
        ]
    test = _cell(row, mapping, "test")
    loinc = mapping.tests.get(test.upper())
    if loinc is None:
        raise MappingError(mapping.columns["test"], f"test {test!r} has no LOINC in [tests]")
    unit = _cell(row, mapping, "unit")
    return [(test, loinc, _value(_cell(row, mapping, "value"), unit, mapping.columns["value"]))]


def _value(text: str, unit: str, column: str) -> dict[str, Any]:
    if not unit:
        raise MappingError(column, "no unit")
    censored = _CENSORED.fullmatch(text)
    if censored:
        return {"value": float(censored[2]), "unit": ucum(unit), "comparator": censored[1]}
    return {"value": _float(text, column), "unit": ucum(unit)}


def _float(text: str, column: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise MappingError(column, f"{text!r} is not a number") from exc


def _ae(row: Mapping[str, str], mapping: CsvMapping, *, ref: str) -> dict[str, Any]:
    values = {name: _cell(row, mapping, name) for name in _AE_COLUMNS}
    payload: dict[str, Any] = {"ae_ref": ref[:64], "term": values["term"]}
    if values["grade"]:
        payload["ctcae_grade"] = int(_float(values["grade"], mapping.columns["grade"]))
    elif values["severity"].lower() in ("mild", "moderate", "severe"):
        severity = values["severity"].lower()
        payload |= {
            "severity": severity,
            "ctcae_grade_source": "from_severity",
            "ctcae_grade": ("mild", "moderate", "severe").index(severity) + 1,
        }
    criteria = [c.strip().lower() for c in re.split(r"[;,]", values["seriousness"]) if c.strip()]
    payload["seriousness_criteria"] = criteria
    for name in ("outcome", "relatedness_uc_msc", "relatedness_plasma_exchange"):
        if values[name]:
            payload[name] = values[name].lower().replace(" ", "_")
    if values["awareness_at"]:
        column = mapping.columns["awareness_at"]
        payload["awareness_at"] = iso_utc(
            complete(values["awareness_at"], field=column, zone=mapping.zone)[0]
        )
    return payload
