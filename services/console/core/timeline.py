"""A participant's course (pure): the window around an alert, procedures, lab and MELD series."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from clinical.calculators.meld import MeldLabs, bilirubin_mg_dl, creatinine_mg_dl, meld
from services.console.core.events import Event

#: Lab kinds charted, with their labels and the unit ingest normalises them to.
CHARTED: Final = {
    "bilirubin": ("Total bilirubin", "µmol/L"),
    "inr": ("INR", ""),
    "creatinine": ("Creatinine", "µmol/L"),
    "hb": ("Haemoglobin", "g/L"),
}
#: LOINC codes of the charted kinds (RULES.md §0.5; ingest normalises each to CHARTED's unit).
CHARTED_LOINC: Final = {
    "1975-2": "bilirubin",
    "14631-6": "bilirubin",
    "6301-6": "inr",
    "2160-0": "creatinine",
    "14682-9": "creatinine",
    "718-7": "hb",
}
PROCEDURES: Final = {"uc_msc_infusion": "UC-MSC infusion", "plasma_exchange": "Plasma exchange"}
#: MELD inputs must lie within 48 h of each other (clinical/calculators/meld.py).
_MELD_SPAN: Final = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class Series:
    """One charted quantity over time."""

    key: str
    label: str
    unit: str
    points: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class Marker:
    """A procedure drawn on the timeline and the charts."""

    at: datetime
    label: str
    event_id: str


def window(events: Iterable[Event], center: datetime, *, days: float = 7.0) -> list[Event]:
    """The events within `days` around `center` (half before, half after), in time order."""
    half = timedelta(days=days / 2)
    return sorted(
        (e for e in events if center - half <= e.occurred_at <= center + half),
        key=lambda e: e.occurred_at,
    )


def markers(events: Iterable[Event]) -> list[Marker]:
    """UC-MSC infusions and plasma exchange sessions, in time order."""
    found = [
        Marker(e.occurred_at, PROCEDURES[e.body["payload"]["treatment"]], e.event_id)
        for e in events
        if e.event_type == "treatment_administered"
        and e.body.get("payload", {}).get("treatment") in PROCEDURES
    ]
    return sorted(found, key=lambda m: m.at)


def _lab_value(event: Event) -> tuple[str, float] | None:
    payload = event.body.get("payload", {})
    kind = CHARTED_LOINC.get(str(payload.get("loinc")), "")
    result = payload.get("result") or {}
    value = result.get("normalised_value", result.get("value"))
    return (kind, float(value)) if kind in CHARTED and value is not None else None


def lab_series(events: Iterable[Event]) -> list[Series]:
    """Bilirubin, INR, creatinine and haemoglobin over time (normalised units)."""
    points: dict[str, list[tuple[datetime, float]]] = {key: [] for key in CHARTED}
    for event in sorted(events, key=lambda e: e.occurred_at):
        found = _lab_value(event) if event.event_type == "lab_result_recorded" else None
        if found is not None:
            points[found[0]].append((event.occurred_at, found[1]))
    return [Series(k, *CHARTED[k], points=tuple(v)) for k, v in points.items()]


def meld_series(labs: Sequence[Series]) -> Series:
    """MELD at each lab time where bilirubin, INR and creatinine lie within 48 h."""
    by_key = {s.key: s.points for s in labs}
    times = sorted({at for key in ("bilirubin", "inr", "creatinine") for at, _ in by_key[key]})
    points: list[tuple[datetime, float]] = []
    for at in times:
        latest = [_latest(by_key[k], at) for k in ("bilirubin", "inr", "creatinine")]
        if all(v is not None for v in latest):
            bili, inr, creat = (float(v) for v in latest if v is not None)
            labs_now = MeldLabs(bilirubin_mg_dl(bili), inr, creatinine_mg_dl(creat))
            points.append((at, float(meld(labs_now))))
    return Series("meld", "MELD", "", tuple(points))


def _latest(points: Sequence[tuple[datetime, float]], at: datetime) -> float | None:
    earlier = [value for when, value in points if at - _MELD_SPAN <= when <= at]
    return earlier[-1] if earlier else None
