"""One line of clinical words for a projected event (adapters layer, used by the templates)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from clinical.labels import format_value
from services.console.core.events import Event
from services.console.core.timeline import CHARTED, CHARTED_LOINC, PROCEDURES


def _lab(p: Mapping[str, Any]) -> str:
    result = p.get("result") or {}
    kind = CHARTED_LOINC.get(str(p.get("loinc")))
    if kind is not None:  # the charted kinds, in the unit the charts use
        name, unit = CHARTED[kind]
        value = result.get("normalised_value", result.get("value"))
        return f"{name}: {format_value(value)} {unit}".strip()
    return f"LOINC {p.get('loinc')}: {format_value(result.get('value'))} {result.get('unit', '')}"


def _treatment(p: Mapping[str, Any]) -> str:
    kind = str(p.get("treatment"))
    text = PROCEDURES.get(kind, format_value(kind))
    if p.get("dose_cells_per_kg"):
        text += f", {p['dose_cells_per_kg']:g} cells/kg"
    if p.get("volume_ml"):
        text += f", {p['volume_ml']:g} mL"
    return text


def _ae(p: Mapping[str, Any]) -> str:
    serious = ", ".join(format_value(c) for c in p.get("seriousness_criteria", ()))
    text = f"{p.get('term', 'adverse event')}, CTCAE grade {p.get('ctcae_grade')}"
    return f"{text}, serious ({serious})" if serious else text


def _signal(p: Mapping[str, Any]) -> str:
    return f"{p.get('urgency')} {p.get('title')}"


def _notify(p: Mapping[str, Any]) -> str:
    if "by" in p:
        return f"by {p['by']}: {p.get('reason', '')}"
    if "level" in p:
        return f"level {p['level']} to {', '.join(map(format_value, p.get('to_roles', ())))}"
    detail = p.get("smtp_reply") or p.get("error") or ""
    return f"{format_value(p.get('role'))} {p.get('address', '')} {detail}".strip()


_BY_TYPE: Final[dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "lab_result_recorded": _lab,
    "treatment_administered": _treatment,
    "adverse_event_reported": _ae,
    "adverse_event_updated": _ae,
    "signal_raised": _signal,
    "signal_updated": _signal,
    "fact_corrected": lambda p: f"corrects {p.get('supersedes_event_id')}: {p.get('reason')}",
    "participant_enrolled": lambda p: f"arm {p.get('arm')}",
    "death_recorded": lambda p: f"cause: {format_value(p.get('cause_category'))}",
}


def describe(event: Event) -> str:
    """What happened, in words; the event type alone when nothing more is known."""
    payload = event.body.get("payload") or {}
    describe_one = _BY_TYPE.get(event.event_type)
    if describe_one is None and event.source == "notify":
        describe_one = _notify
    try:
        return describe_one(payload) if describe_one else ""
    except (TypeError, ValueError, KeyError):
        return ""
