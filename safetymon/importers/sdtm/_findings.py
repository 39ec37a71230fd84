"""LB (labs), VS (vital signs) and EX (exposure) records to events (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from safetymon.importers._types import Mapped, MappingError, Outcome, Unmapped
from safetymon.importers.dates import iso_utc
from safetymon.importers.sdtm._common import (
    Row,
    envelope,
    number,
    sequence,
    site_for,
    ucum,
    when,
)
from safetymon.importers.sdtm._study import Study, TreatmentMap

#: LBTESTCD -> (LOINC for a mass unit, LOINC for a substance unit), the codes of RULES.md §0.5
#: only: a test without a checked code is skipped with its reason, never sent under a guess.
LB_LOINC: Final[dict[str, tuple[str, str]]] = {
    "ALT": ("1742-6", "1742-6"),
    "AST": ("1920-8", "1920-8"),
    "ALP": ("6768-6", "6768-6"),
    "GGT": ("2324-2", "2324-2"),
    "BILI": ("1975-2", "14631-6"),
    "INR": ("6301-6", "6301-6"),
    "PT": ("5902-2", "5902-2"),
    "CREAT": ("2160-0", "14682-9"),
    "SODIUM": ("2951-2", "2951-2"),
    "K": ("2823-3", "2823-3"),
    "CA": ("17861-6", "2000-8"),
    "ALB": ("1751-7", "1751-7"),
    "HGB": ("718-7", "718-7"),
    "HCT": ("4544-3", "4544-3"),
    "WBC": ("6690-2", "6690-2"),
    "NEUT": ("751-8", "751-8"),
    "PLAT": ("777-3", "777-3"),
    "AMMONIA": ("22763-7", "16362-6"),
    "CRP": ("1988-5", "1988-5"),
    "LACTATE": ("2524-7", "2524-7"),
}
#: VSTESTCD -> vital sign of the contract.
VS_SIGNS: Final[dict[str, str]] = {
    "SYSBP": "systolic_bp",
    "DIABP": "diastolic_bp",
    "MAP": "mean_arterial_pressure",
    "PULSE": "heart_rate",
    "HR": "heart_rate",
    "RESP": "respiratory_rate",
    "TEMP": "temperature",
    "OXYSAT": "spo2",
}
_SPECIMEN: Final = {"SERUM": "serum", "PLASMA": "plasma", "BLOOD": "blood", "URINE": "urine"}
_BY_CATEGORY: Final = {"HEMATOLOGY": "blood", "URINALYSIS": "urine"}
_CENSORED: Final = re.compile(r"^(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)$")


def map_lb(rows: Iterable[Row], study: Study, *, sites: Mapping[str, str]) -> Iterator[Outcome]:
    """One `lab_result_recorded` per numeric or censored result of a test with a LOINC code."""
    return _each(rows, "LB", _lab, study, sites=sites)


def _lab(row: Row, study: Study, *, sites: Mapping[str, str], record: str) -> Mapped:
    subject, test = row["USUBJID"].strip(), row.get("LBTESTCD", "").strip()
    if test not in LB_LOINC:
        raise MappingError("LBTESTCD", f"{test!r} has no checked LOINC code (RULES.md §0.5)")
    if row.get("LBSTAT", "").strip().upper() == "NOT DONE":
        raise MappingError("LBSTAT", "test not done")
    seq = sequence(row, "LBSEQ")
    result = _result(row, "LBSTRESN", "LBSTRESC", "LBSTRESU")
    loinc = LB_LOINC[test][1 if "mol" in result["unit"].lower() else 0]
    payload: dict[str, Any] = {"loinc": loinc, "result": result, "specimen": _specimen(row)}
    for name, column in (("reference_low", "LBSTNRLO"), ("reference_high", "LBSTNRHI")):
        value = number(row, column)
        if value is not None:
            payload[name] = value
    occurred, payload["occurred_at_as_reported"] = when(row, "LBDTC", study)
    submission = envelope(
        row,
        study,
        event_type="lab_result_recorded",
        site=site_for(row, sites),
        occurred_at=occurred,
        source_ref=f"LB:{subject}:{test}:{seq}",
        payload=payload,
    )
    return Mapped(record, submission, f"LB:{test}")


def _result(row: Row, numeric: str, text: str, unit_column: str) -> dict[str, Any]:
    unit = row.get(unit_column, "").strip()
    if not unit:
        raise MappingError(unit_column, "no unit given")
    value = number(row, numeric)
    if value is not None:
        return {"value": value, "unit": ucum(unit)}
    shown = row.get(text, "").strip()
    censored = _CENSORED.fullmatch(shown)
    if censored is None:
        reason = f"no numeric result ({text} is {shown!r})" if shown else "no result given"
        raise MappingError(numeric, reason)
    return {"value": float(censored[2]), "unit": ucum(unit), "comparator": censored[1]}


def _specimen(row: Row) -> str:
    spec = row.get("LBSPEC", "").strip().upper()
    if spec in _SPECIMEN:
        return _SPECIMEN[spec]
    return _BY_CATEGORY.get(row.get("LBCAT", "").strip().upper(), "serum")


def map_vs(rows: Iterable[Row], study: Study, *, sites: Mapping[str, str]) -> Iterator[Outcome]:
    """One `vital_signs_recorded` per VS record of a sign the contract has."""
    return _each(rows, "VS", _vital, study, sites=sites)


def _each(
    rows: Iterable[Row],
    domain: str,
    build: Callable[..., Mapped],
    study: Study,
    *,
    sites: Mapping[str, str],
) -> Iterator[Outcome]:
    """Map each row of a findings domain; an unknown or not-done test is skipped, not rejected."""
    for row in rows:
        subject = row.get("USUBJID", "").strip()
        test = row.get(f"{domain}TESTCD", "").strip()
        record = f"{domain}:{subject}:{test}:{domain}SEQ={row.get(f'{domain}SEQ', '').strip()}"
        try:
            yield build(row, study, sites=sites, record=record)
        except MappingError as exc:
            skip = exc.field in (f"{domain}TESTCD", f"{domain}STAT")
            yield Unmapped(record, exc.field, exc.reason, "skipped" if skip else "rejected")


def _vital(row: Row, study: Study, *, sites: Mapping[str, str], record: str) -> Mapped:
    subject, test = row["USUBJID"].strip(), row.get("VSTESTCD", "").strip()
    sign = VS_SIGNS.get(test)
    if sign is None:
        raise MappingError("VSTESTCD", f"{test!r} is not a vital sign safetymon monitors")
    if row.get("VSSTAT", "").strip().upper() == "NOT DONE":
        raise MappingError("VSSTAT", "measurement not done")
    seq = sequence(row, "VSSEQ")
    occurred, reported = when(row, "VSDTC", study)
    payload = {
        "observations": {sign: _result(row, "VSSTRESN", "VSSTRESC", "VSSTRESU")},
        "occurred_at_as_reported": reported,
    }
    submission = envelope(
        row,
        study,
        event_type="vital_signs_recorded",
        site=site_for(row, sites),
        occurred_at=occurred,
        source_ref=f"VS:{subject}:{test}:{seq}",
        payload=payload,
    )
    return Mapped(record, submission, f"VS:{test}")


def map_ex(rows: Iterable[Row], study: Study, *, sites: Mapping[str, str]) -> Iterator[Outcome]:
    """One `treatment_administered` per EX record, as the mapping file's [treatments] say."""
    for row in rows:
        subject, product = row.get("USUBJID", "").strip(), row.get("EXTRT", "").strip()
        record = f"EX:{subject}:EXSEQ={row.get('EXSEQ', '').strip()}"
        spec = study.treatments.get(product.upper())
        if spec is not None and spec.treatment is None:
            yield Unmapped(record, "EXTRT", spec.skip_reason or "skipped", "skipped")
            continue
        try:
            yield _exposure(row, study, spec, sites=sites, record=record)
        except MappingError as exc:
            yield Unmapped(record, exc.field, exc.reason)


def _exposure(
    row: Row, study: Study, spec: TreatmentMap | None, *, sites: Mapping[str, str], record: str
) -> Mapped:
    if spec is None or spec.treatment is None:
        product = row.get("EXTRT", "").strip()
        raise MappingError("EXTRT", f"{product!r} has no entry in the mapping [treatments]")
    subject, seq = row["USUBJID"].strip(), sequence(row, "EXSEQ")
    occurred, reported = when(row, "EXSTDTC", study)
    payload: dict[str, Any] = {"treatment": spec.treatment.value, **spec.details}
    payload["occurred_at_as_reported"] = reported
    if 1 <= seq <= 99:
        payload["sequence_number"] = seq
    if row.get("EXENDTC", "").strip():
        payload["ended_at"] = iso_utc(when(row, "EXENDTC", study)[0])
    submission = envelope(
        row,
        study,
        event_type="treatment_administered",
        site=site_for(row, sites),
        occurred_at=occurred,
        source_ref=f"EX:{subject}:{seq}",
        payload=payload,
    )
    return Mapped(record, submission, f"EX:{spec.treatment.value}")
