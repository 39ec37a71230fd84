"""DM (enrolment) and AE with SUPPAE (adverse events) records to events (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from safetymon.importers._case import case_id
from safetymon.importers._types import Mapped, MappingError, Outcome, Unmapped
from safetymon.importers.sdtm._common import Row, envelope, sequence, site_for, when
from safetymon.importers.sdtm._study import Study

#: SDTM seriousness flags (AE or SUPPAE) -> ICH E2A criterion.
_CRITERIA: Final = {
    "AESDTH": "death",
    "AESLIFE": "life_threatening",
    "AESHOSP": "hospitalisation",
    "AESPROL": "prolonged_hospitalisation",
    "AESDISAB": "disability",
    "AESCONG": "congenital_anomaly",
    "AESMIE": "important_medical_event",
    "AESOSP": "important_medical_event",
}
_SEVERITY: Final = {"MILD": ("mild", 1), "MODERATE": ("moderate", 2), "SEVERE": ("severe", 3)}
_CAUSALITY: Final = {
    "NONE": "not_related",
    "NOT RELATED": "not_related",
    "REMOTE": "unlikely",
    "UNLIKELY": "unlikely",
    "UNLIKELY RELATED": "unlikely",
    "POSSIBLE": "possible",
    "POSSIBLY RELATED": "possible",
    "PROBABLE": "probable",
    "PROBABLY RELATED": "probable",
    "DEFINITE": "definite",
    "RELATED": "definite",
}
_OUTCOME: Final = {
    "RECOVERED/RESOLVED": "recovered",
    "RECOVERING/RESOLVING": "recovering",
    "NOT RECOVERED/NOT RESOLVED": "not_recovered",
    "RECOVERED/RESOLVED WITH SEQUELAE": "recovered_with_sequelae",
    "FATAL": "fatal",
    "UNKNOWN": "unknown",
}


def map_dm(rows: Iterable[Row], study: Study) -> Iterator[Outcome]:
    """One `participant_enrolled` per randomised subject; BRTHDTC and names are never read."""
    for row in rows:
        subject = row.get("USUBJID", "").strip()
        record = f"DM:{subject}"
        armcd = row.get("ARMCD", "").strip()
        if armcd in study.not_randomised:
            reason = f"ARMCD {armcd!r} is not randomised (mapping file): no enrolment"
            yield Unmapped(record, "ARMCD", reason, "skipped")
            continue
        try:
            yield _enrolment(row, study, armcd=armcd, record=record)
        except MappingError as exc:
            yield Unmapped(record, exc.field, exc.reason)


def _enrolment(row: Row, study: Study, *, armcd: str, record: str) -> Mapped:
    arm = study.arms.get(armcd)
    if arm is None:
        raise MappingError("ARMCD", f"{armcd!r} has no arm in the mapping file [arms]")
    occurred, reported = when(row, "RFSTDTC", study)
    payload: dict[str, Any] = {"arm": arm.value, "occurred_at_as_reported": reported}
    if row.get("SEX", "").strip() in ("F", "M"):
        payload["sex"] = row["SEX"].strip()
    subject = row["USUBJID"].strip()
    submission = envelope(
        row,
        study,
        event_type="participant_enrolled",
        site=row.get("SITEID", "").strip(),
        occurred_at=occurred,
        source_ref=f"DM:{subject}",
        payload=payload,
    )
    return Mapped(record, submission, f"DM:arm={arm.value}")


def supplemental(rows: Iterable[Row]) -> dict[tuple[str, str], dict[str, str]]:
    """SUPPAE keyed by (USUBJID, AESEQ): QNAM -> QVAL."""
    supp: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        if row.get("IDVAR", "").strip() != "AESEQ":
            continue
        seq = str(sequence(row, "IDVARVAL"))
        key = (row.get("USUBJID", "").strip(), seq)
        supp.setdefault(key, {})[row.get("QNAM", "").strip()] = row.get("QVAL", "").strip()
    return supp


def map_ae(
    rows: Iterable[Row],
    supp: Mapping[tuple[str, str], Mapping[str, str]],
    study: Study,
    *,
    sites: Mapping[str, str],
) -> Iterator[Outcome]:
    """One `adverse_event_reported` per AE record, seriousness derived from the criteria."""
    for row in rows:
        subject = row.get("USUBJID", "").strip()
        record = f"AE:{subject}:AESEQ={row.get('AESEQ', '').strip()}"
        try:
            seq = sequence(row, "AESEQ")
            record = f"AE:{subject}:AESEQ={seq}"
            extra = supp.get((subject, str(seq)), {})
            payload = _ae_payload(row, extra, study, ref=f"{subject}.AE.{seq}")
            occurred, payload["occurred_at_as_reported"] = when(row, "AESTDTC", study)
            submission = envelope(
                row,
                study,
                event_type="adverse_event_reported",
                site=site_for(row, sites),
                occurred_at=occurred,
                source_ref=f"AE:{subject}:{seq}",
                payload=payload,
            )
            serious = "serious" if payload["seriousness_criteria"] else "non_serious"
            yield Mapped(record, submission, f"AE:{serious}")
        except MappingError as exc:
            yield Unmapped(record, exc.field, exc.reason)


def _ae_payload(row: Row, extra: Mapping[str, str], study: Study, *, ref: str) -> dict[str, Any]:
    term = row.get("AETERM", "").strip()
    if not term:
        raise MappingError("AETERM", "no reported term")
    payload: dict[str, Any] = {"ae_ref": ref, "term": term[:200]}
    case = _case(row)
    if case is not None:
        payload["case_id"] = case
    payload.update(_grade(row))
    payload["seriousness_criteria"] = _seriousness(row, extra)
    rel = row.get("AEREL", "").strip().upper()
    if rel:
        if rel not in _CAUSALITY:
            raise MappingError("AEREL", f"{rel!r} is not a causality we know")
        payload["relatedness_uc_msc"] = _CAUSALITY[rel]
    out = row.get("AEOUT", "").strip().upper()
    if out:
        if out not in _OUTCOME:
            raise MappingError("AEOUT", f"{out!r} is not a CDISC outcome term")
        payload["outcome"] = _OUTCOME[out]
    llt = row.get("AELLTCD", "").strip().removesuffix(".0")
    if len(llt) == 8 and llt.isdigit():
        payload["meddra_llt_code"] = llt
    if row.get("AEENDTC", "").strip():
        payload["ended_as_reported"] = when(row, "AEENDTC", study)[1]
    return payload


def _case(row: Row) -> str | None:
    # AESPID is the sponsor's id of the AE on the CRF, repeated on each follow-up record of
    # the same event (the pilot's 308 repeats keep term and onset); AEGRPID groups records
    # of one event where AESPID is not used.
    subject = row["USUBJID"].strip()
    for column in ("AESPID", "AEGRPID"):
        value = row.get(column, "").strip()
        if value:
            return case_id(subject, column, value)
    return None


def _grade(row: Row) -> dict[str, Any]:
    grade = row.get("AETOXGR", "").strip().removesuffix(".0")
    severity = row.get("AESEV", "").strip().upper()
    if grade in ("1", "2", "3", "4", "5"):
        result: dict[str, Any] = {"ctcae_grade": int(grade)}
        if severity in _SEVERITY:
            result["severity"] = _SEVERITY[severity][0]
        return result
    if severity in _SEVERITY:
        name, value = _SEVERITY[severity]
        return {"ctcae_grade": value, "severity": name, "ctcae_grade_source": "from_severity"}
    raise MappingError("AESEV", f"no AETOXGR and severity {severity!r} is not MILD/MODERATE/SEVERE")


def _seriousness(row: Row, extra: Mapping[str, str]) -> list[str]:
    # The criteria decide, not AESER: in CDISCPILOT01 33 AEs flag hospitalisation or a
    # life threat while AESER says N, and ICH E2A defines serious by the criteria.
    found: list[str] = []
    for flag, criterion in _CRITERIA.items():
        value = (row.get(flag, "") or extra.get(flag, "")).strip().upper()
        if value == "Y" and criterion not in found:
            found.append(criterion)
    if not found and row.get("AESER", "").strip().upper() == "Y":
        found.append("important_medical_event")  # serious without a named criterion
    return found
