"""Turn one submitted item into a validated, normalised fact, or say exactly why not (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from pydantic import ValidationError

from schemas import (
    ALL_FACTS,
    ARRIVING_FACTS,
    FACT_ADAPTER,
    ArrivingFact,
    FactCorrected,
    LabResultRecorded,
    Quantity,
    VitalSignsRecorded,
)
from services.ingest.core.errors import FieldError, UnknownUnitError
from services.ingest.core.units import (
    LAB_CATALOGUE,
    VITAL_CATALOGUE,
    Analyte,
    impossible,
    normalise,
)

#: Namespace of event ids derived from the dedupe key: a resubmission gets the same id.
EVENT_NAMESPACE = UUID("5b0a3c2e-8f61-4d0e-9a57-1c2d3e4f5a60")
ARRIVING_TYPES = frozenset(model.model_fields["event_type"].default for model in ARRIVING_FACTS)


@dataclass(frozen=True, slots=True)
class Rejection:
    """An item that cannot become a fact, with every reason found."""

    errors: tuple[FieldError, ...]
    source: str | None = None
    source_ref: str | None = None


def event_id_for(source: str, source_ref: str, *, trial_id: str, site_id: str | None) -> UUID:
    """Deterministic event id of a source record within its trial and site (core/dedupe.py).

    The scope is part of the id, so two sites' records under one `source_ref` never share
    an id (ids are unique in the log and are JetStream's dedupe key). Facts logged before
    the scope was added keep the ids they were given (uuid5 of source and source_ref).
    """
    # Trial, site and source are codes (no \x1f), so this name is unambiguous.
    return uuid5(EVENT_NAMESPACE, f"{trial_id}\x1f{site_id or ''}\x1f{source}\x1f{source_ref}")


def _field_errors(
    exc: ValidationError, prefix: str = "", tag: str | None = None
) -> tuple[FieldError, ...]:
    errors = []
    for error in exc.errors(include_url=False)[:20]:
        loc = list(error["loc"])
        if tag is not None and loc and loc[0] == tag:
            loc = loc[1:]  # the discriminated union puts the event type first
        path = ".".join(str(part) for part in (prefix, *loc) if part != "")
        errors.append(FieldError(field=path or "(event)", reason=error["msg"]))
    return tuple(errors)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A validated fact and its final JSON wire form (normalised units filled in)."""

    fact: ArrivingFact
    wire: dict[str, Any]


#: Envelope fields only ingest may set; a submission carrying them is refused.
_ASSIGNED = ("event_id", "recorded_at", "actor", "seq", "prev_hash", "hash")


def accept(item: object, *, recorded_at: datetime, actor: str) -> Accepted | Rejection:
    """Validate one submitted item and return the fact ingest would append."""
    if not isinstance(item, Mapping):
        return Rejection((FieldError("(event)", "an event must be a JSON object"),))
    source, source_ref = item.get("source"), item.get("source_ref")
    refs = (source if isinstance(source, str) else None, str(source_ref) if source_ref else None)
    event_type = item.get("event_type")
    # A list or object here is unhashable: test the type first, or the set lookup raises.
    if not isinstance(event_type, str) or event_type not in ARRIVING_TYPES:
        known = ", ".join(sorted(ARRIVING_TYPES))
        reason = f"unknown event type {event_type!r}; expected one of: {known}"
        return Rejection((FieldError("event_type", reason),), *refs)
    assigned = [
        FieldError(k, "is assigned by ingest; do not send it") for k in _ASSIGNED if k in item
    ]
    if assigned:
        return Rejection(tuple(assigned), *refs)
    try:
        fact = FACT_ADAPTER.validate_python(
            {
                **item,
                "event_id": _event_id(item, *refs),
                "recorded_at": recorded_at,
                "actor": actor,
            }
        )
    except ValidationError as exc:
        return Rejection(_field_errors(exc, tag=str(event_type)), *refs)
    wire = fact.model_dump(mode="json", exclude={"seq", "prev_hash", "hash"})
    try:
        if isinstance(fact, LabResultRecorded):
            _normalise_lab(fact, wire["payload"])
        elif isinstance(fact, VitalSignsRecorded):
            _normalise_vitals(fact, wire["payload"])
    except _FieldUnitError as exc:
        return Rejection((FieldError(exc.field, exc.reason),), *refs)
    return Accepted(fact, wire)


def _event_id(item: Mapping[str, Any], source: str | None, source_ref: str | None) -> UUID:
    trial_id, site_id = item.get("trial_id"), item.get("site_id")
    if source and source_ref and isinstance(trial_id, str) and isinstance(site_id, str | None):
        return event_id_for(source, source_ref, trial_id=trial_id, site_id=site_id)
    return EVENT_NAMESPACE  # a placeholder: validation reports the invalid key fields


class _FieldUnitError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _quantity(quantity: Quantity, analyte: Analyte, field: str, out: dict[str, Any]) -> None:
    try:
        value = normalise(quantity.value, analyte, quantity.unit)
    except UnknownUnitError as exc:
        raise _FieldUnitError(field, str(exc)) from exc
    # Checked in the canonical unit, so 80 °C and 176 °F are refused alike.
    why = impossible(value, analyte)
    if why is not None:
        raise _FieldUnitError(field.removesuffix(".unit") + ".value", why)
    out["normalised_value"] = value
    out["normalised_unit"] = analyte.canonical


def _normalise_lab(fact: LabResultRecorded, out: dict[str, Any]) -> None:
    # Normalised values go straight into the wire form: copying frozen models costs more
    # than validating them (measured: 3 model_copy calls were 60 % of accept()).
    payload = fact.payload
    analyte = LAB_CATALOGUE.get(payload.loinc)
    if analyte is None:
        raise _FieldUnitError(
            "payload.loinc",
            f"LOINC {payload.loinc} is not in the lab catalogue; ask for it to be added"
            " rather than sending it under another code",
        )
    _quantity(payload.result, analyte, "payload.result.unit", out["result"])
    _check_organism(fact, analyte)
    unit = payload.result.unit
    for name in ("reference_low", "reference_high"):
        value = getattr(payload, name)
        out[f"normalised_{name}"] = None if value is None else normalise(value, analyte, unit)


def _check_organism(fact: LabResultRecorded, analyte: Analyte) -> None:
    # An organism is what a culture grew: on another analyte, or beside "no growth", it
    # contradicts the result and the infection rules would read one of them wrongly.
    organism, payload = fact.payload.organism, fact.payload
    if organism is None:
        return
    if analyte.name != "blood_culture":
        reason = f"LOINC {payload.loinc} is not a culture; only a blood culture names an organism"
        raise _FieldUnitError("payload.organism", reason)
    if payload.result.value == 0:
        reason = "a culture with no growth (result 0) names no organism"
        raise _FieldUnitError("payload.organism", reason)


def _normalise_vitals(fact: VitalSignsRecorded, out: dict[str, Any]) -> None:
    for name, quantity in fact.payload.observations.items():
        field = f"payload.observations.{name}.unit"
        _quantity(quantity, VITAL_CATALOGUE[name], field, out["observations"][name])


def correction_errors(
    fact: FactCorrected, superseded: tuple[str, str] | None
) -> tuple[FieldError, ...]:
    """Check a correction against the (event_type, participant_id) of the fact it supersedes."""
    target = fact.payload.supersedes_event_id
    if superseded is None:
        return (FieldError("payload.supersedes_event_id", f"no event {target} in the log"),)
    superseded_type, participant_id = superseded
    if participant_id != fact.participant_id:
        reason = f"event {target} belongs to another participant"
        return (FieldError("payload.supersedes_event_id", reason),)
    if superseded_type == "fact_corrected":
        reason = f"event {target} is itself a correction; correct the original event"
        return (FieldError("payload.supersedes_event_id", reason),)
    replacement = fact.payload.replacement
    if replacement is None:
        return ()
    model: Any = ALL_FACTS[superseded_type].model_fields["payload"].annotation
    try:
        model.model_validate(replacement)
    except ValidationError as exc:
        return _field_errors(exc, prefix="payload.replacement")
    return ()
