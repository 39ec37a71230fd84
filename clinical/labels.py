"""Clinical labels of signal values: raw keys in, words and units out (stdlib only).

A signal's `values` carry machine keys (`relatedness_uc_msc`, `creatinine_umol_l`); people
read "Relatedness to UC-MSC" and "Creatinine (µmol/L)". The console and the emails use this
one table, so a key reads the same everywhere. A key missing from the table still reads
sensibly: its words, with the unit its suffix names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Label:
    """How one value key is shown: its words and its unit (None when it has none)."""

    text: str
    unit: str | None = None


_L = Label
#: Known keys. Lab units are the canonical units ingest normalises to.
LABELS: Final[dict[str, Label]] = {
    "relatedness_uc_msc": _L("Relatedness to UC-MSC"),
    "trigger_event_type": _L("Triggered by"),
    "ae_ref": _L("Adverse event"),
    "previous_ae_ref": _L("Previous adverse event"),
    "bleeding_ae_ref": _L("Bleeding adverse event"),
    "term": _L("Adverse event term"),
    "previous_term": _L("Previous term"),
    "ctcae_grade": _L("CTCAE grade"),
    "baseline_grade": _L("Baseline CTCAE grade"),
    "worst_grade": _L("Worst CTCAE grade"),
    "ctcae_fever_grade": _L("CTCAE fever grade"),
    "seriousness_criteria": _L("Seriousness criteria"),
    "presumed_serious": _L("Presumed serious"),
    "expectedness": _L("Expectedness"),
    "outcome": _L("Outcome"),
    "arm": _L("Arm"),
    "cause_category": _L("Cause of death"),
    "procedure": _L("Procedure"),
    "proximate_procedure": _L("Procedure nearby"),
    "procedure_proximate": _L("Close to a procedure"),
    "procedure_event_id": _L("Procedure event"),
    "hours_after_procedure_start": _L("Time after procedure start", "h"),
    "treatment": _L("Treatment"),
    "bilirubin": _L("Total bilirubin", "µmol/L"),
    "bilirubin_umol_l": _L("Total bilirubin", "µmol/L"),
    "creatinine": _L("Creatinine", "µmol/L"),
    "creatinine_umol_l": _L("Creatinine", "µmol/L"),
    "baseline_umol_l": _L("Baseline", "µmol/L"),
    "absolute_rise_umol_l": _L("Absolute rise", "µmol/L"),
    "inr": _L("INR"),
    "inr_max": _L("Highest INR"),
    "hb": _L("Haemoglobin", "g/L"),
    "hb_g_l": _L("Haemoglobin", "g/L"),
    "hb_drop_g_l": _L("Haemoglobin drop", "g/L"),
    "hb_earlier_g_l": _L("Earlier haemoglobin", "g/L"),
    "hb_later_g_l": _L("Later haemoglobin", "g/L"),
    "threshold_g_l": _L("Threshold", "g/L"),
    "platelets": _L("Platelets", "10⁹/L"),
    "platelets_min_e9_l": _L("Lowest platelets", "10⁹/L"),
    "wbc": _L("White cells", "10⁹/L"),
    "neutrophils": _L("Neutrophils", "10⁹/L"),
    "sodium": _L("Sodium", "mmol/L"),
    "potassium": _L("Potassium", "mmol/L"),
    "ica": _L("Ionised calcium", "mmol/L"),
    "ionised_calcium_mmol_l": _L("Ionised calcium", "mmol/L"),
    "lactate": _L("Lactate", "mmol/L"),
    "pct_ng_ml": _L("Procalcitonin", "ng/mL"),
    "alt": _L("ALT", "U/L"),
    "ast": _L("AST", "U/L"),
    "meld": _L("MELD"),
    "baseline_meld": _L("Baseline MELD"),
    "lowest_meld_14d": _L("Lowest MELD in 14 days"),
    "temperature": _L("Temperature", "°C"),
    "temperature_c": _L("Temperature", "°C"),
    "heart_rate": _L("Heart rate", "/min"),
    "respiratory_rate": _L("Respiratory rate", "/min"),
    "systolic_bp": _L("Systolic blood pressure", "mmHg"),
    "qsofa_score": _L("qSOFA score"),
    "sirs_criteria_count": _L("SIRS criteria met"),
    "sirs_criteria": _L("SIRS criteria"),
    "septic_shock": _L("Septic shock"),
    "kdigo_stage": _L("KDIGO AKI stage"),
    "west_haven_grade": _L("West Haven grade"),
    "previous_west_haven_grade": _L("Previous West Haven grade"),
    "organ_failure_count": _L("Organ failures"),
    "new_organ_failures": _L("New organ failures"),
    "persisting_hours": _L("Persisting for", "h"),
    "hours_between": _L("Time between", "h"),
    "delay_hours": _L("Delay", "h"),
    "days_since_previous": _L("Days since previous", "d"),
    "lowest_ml_kg_h": _L("Lowest urine output", "mL/kg/h"),
    "threshold_ml_kg_h": _L("Threshold", "mL/kg/h"),
    "sponsor_due": _L("Sponsor report due"),
    "dsmb_chair_due": _L("DSMB chair notice due"),
    "first_raised_at": _L("First raised at"),
    "uln": _L("Upper limit of normal"),
    "lln": _L("Lower limit of normal"),
    "value": _L("Value"),
    "ratio": _L("Ratio"),
}
#: Key suffixes that name a unit, longest first.
_SUFFIX_UNITS: Final = (
    ("_ml_kg_h", "mL/kg/h"),
    ("_umol_l", "µmol/L"),
    ("_mmol_l", "mmol/L"),
    ("_ng_ml", "ng/mL"),
    ("_e9_l", "10⁹/L"),
    ("_g_l", "g/L"),
    ("_hours", "h"),
    ("_days", "d"),
)


def label_of(key: str) -> Label:
    """The label of a value key; an unknown key reads as its words and its suffix's unit."""
    known = LABELS.get(key)
    if known is not None:
        return known
    for suffix, unit in _SUFFIX_UNITS:
        if key.endswith(suffix) and len(key) > len(suffix):
            return Label(_words(key.removesuffix(suffix)), unit)
    return Label(_words(key))


def _words(key: str) -> str:
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else key


def format_value(value: object) -> str:
    """A value as people read it: yes/no for booleans, no trailing zeros, lists joined."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return ", ".join(format_value(item) for item in value)
    return str(value).replace("_", " ")


def labelled(values: dict[str, object]) -> list[tuple[str, str]]:
    """(label, value with unit) pairs in the signal's own key order."""
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        label = label_of(key)
        text = format_value(value)
        if label.unit and value is not None and not isinstance(value, bool):
            text = f"{text} {label.unit}"
        rows.append((label.text, text))
    return rows
