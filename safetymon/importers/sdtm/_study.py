"""How one sponsor study's SDTM codes become this trial's contracts (pure; read from TOML).

Another study's arms and products are not NCT01724398's: the mapping file says, per study,
which ARMCD is which of our arms, which ARMCDs were never randomised, and what each EXTRT
counts as. Nothing is guessed: an ARMCD or EXTRT the file does not name is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.facts import Arm, Treatment


class StudyMappingError(ValueError):
    """The mapping file itself is wrong (names the key)."""


@dataclass(frozen=True, slots=True)
class TreatmentMap:
    """What an EXTRT becomes: a treatment with fixed details, or nothing (with why)."""

    treatment: Treatment | None
    details: Mapping[str, float | str] = field(default_factory=dict)
    skip_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Study:
    """The parsed study mapping."""

    trial_id: str
    zone: ZoneInfo
    arms: Mapping[str, Arm]
    not_randomised: frozenset[str]
    treatments: Mapping[str, TreatmentMap]
    source: str | None = None


def study_from_toml(data: Mapping[str, Any]) -> Study:
    """Parse the `[arms]`, `not_randomised` and `[treatments.*]` tables of a mapping file."""
    try:
        zone = ZoneInfo(str(data.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise StudyMappingError(f"timezone: {data.get('timezone')!r} is not an IANA zone") from exc
    arms = {}
    for code, arm in dict(data.get("arms", {})).items():
        try:
            arms[str(code)] = Arm(arm)
        except ValueError as exc:
            allowed = ", ".join(a.value for a in Arm)
            raise StudyMappingError(f"arms.{code}: {arm!r} is not one of {allowed}") from exc
    treatments = {
        str(name).upper(): treatment_map(str(name), dict(spec))
        for name, spec in dict(data.get("treatments", {})).items()
    }
    source = data.get("source")
    return Study(
        trial_id=str(data.get("trial_id", "NCT01724398")),
        zone=zone,
        arms=arms,
        not_randomised=frozenset(str(code) for code in data.get("not_randomised", ())),
        treatments=treatments,
        source=None if source is None else str(source),
    )


def treatment_map(name: str, spec: dict[str, Any]) -> TreatmentMap:
    """One `[treatments.NAME]` table: `treatment` plus fixed details, or `skip = "why"`."""
    if "skip" in spec:
        return TreatmentMap(None, skip_reason=str(spec["skip"]))
    try:
        treatment = Treatment(spec.pop("treatment"))
    except (KeyError, ValueError) as exc:
        allowed = ", ".join(t.value for t in Treatment)
        msg = f"treatments.{name}: needs `treatment` (one of {allowed}) or `skip`"
        raise StudyMappingError(msg) from exc
    return TreatmentMap(treatment, details=spec)
