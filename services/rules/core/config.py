"""Trial configuration the clinical rules read (core layer): RULES.md [DC] defaults as data.

Every threshold and window RULES.md tags [DC] lives here with its default, so the sponsor can
change it in the versioned trial file (`trial_config/<trial>.v<n>.toml`) without touching a
rule. Rules receive a `TrialConfig` from the engine; nothing reads a global. The version is
stamped on every signal as `config_version`, so an auditor knows which numbers fired it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from clinical import infection


@dataclass(frozen=True, slots=True)
class HepaticEncephalopathyConfig:
    """RULES.md §2: HE-01 lookback, HE-02 window, HE-04 ammonia and HE-05 precipitant windows."""

    new_onset_lookback_days: float = 14.0
    worsening_window_hours: float = 72.0
    ammonia_window_hours: float = 24.0
    precipitant_window_hours: float = 72.0
    sodium_low_mmol_l: float = 125.0


@dataclass(frozen=True, slots=True)
class BleedingConfig:
    """RULES.md §3: Hb drops (Baveno V / ISTH 2022), transfusion threshold, rebleed, PE risk."""

    hb_drop_window_hours: float = 24.0
    hb_major_drop_g_l: float = 30.0
    hb_minor_drop_g_l: float = 20.0
    hb_low_g_l: float = 70.0
    #: VB-04 v2: threshold within `bleeding_context_hours` after a bleeding AE's onset
    #: (Baveno VII 7-8 g/dL target; RULES.md §9 question 3) [DC].
    hb_low_bleeding_g_l: float = 80.0
    bleeding_context_hours: float = 72.0
    rebleed_window_days: float = 42.0
    #: Two bleeding AEs closer than this are one episode coded twice (e.g. haematemesis and
    #: melaena), not a rebleed [DC]; 0 applies RULES.md VB-05 literally.
    rebleed_min_gap_hours: float = 24.0
    pe_risk_lookback_hours: float = 24.0
    pe_risk_platelets_e9_l: float = 50.0
    pe_risk_inr: float = 2.5


@dataclass(frozen=True, slots=True)
class InfectionConfig:
    """RULES.md §4.2-4.3: fever, SIRS, qSOFA, SBP, biomarkers, catheter infection."""

    fever_c: float = infection.FEVER_C
    fever_high_c: float = 40.0
    sirs_window_hours: float = 24.0
    sirs_temperature_high_c: float = 38.0
    sirs_temperature_low_c: float = 36.0
    sirs_heart_rate: float = 90.0
    sirs_respiratory_rate: float = 20.0
    sirs_wbc_high_e9_l: float = 12.0
    sirs_wbc_low_e9_l: float = 4.0
    qsofa_window_hours: float = 24.0
    qsofa_respiratory_rate: float = 22.0
    qsofa_systolic_bp: float = 100.0
    qsofa_gcs_normal: float = 15.0
    shock_lactate_mmol_l: float = 2.0
    sbp_ascitic_pmn_e9_l: float = infection.SBP_ASCITIC_PMN_E9_L
    biomarker_window_hours: float = 24.0
    pct_ng_ml: float = 0.5
    crp_ratio: float = 2.0
    crp_window_hours: float = 48.0
    catheter_culture_window_hours: float = 72.0


@dataclass(frozen=True, slots=True)
class ProcedureConfig:
    """RULES.md §4.1, §4.4, §4.5: procedure windows and reaction thresholds."""

    ir_msc_hours: float = 24.0
    ir_pe_hours: float = 6.0
    inf_msc_days: float = 7.0
    inf_pe_hours: float = 72.0
    thromboembolic_days: float = 7.0
    #: Used only when a TreatmentAdministered carries no `ended_at` [DC]: UC-MSC runs over
    #: 30 min (protocol); a 2000 mL exchange takes about three hours.
    assumed_msc_minutes: float = 30.0
    assumed_pe_minutes: float = 180.0
    baseline_lookback_hours: float = 24.0
    sbp_low: float = 90.0
    sbp_fall: float = 40.0
    spo2_low: float = 90.0
    heart_rate_high: float = 120.0
    map_low: float = 65.0
    ica_lln_default_mmol_l: float = 1.12
    ica_grade2_mmol_l: float = 1.0
    ica_grade3_mmol_l: float = 0.9
    ica_grade4_mmol_l: float = 0.8
    #: PE-04: respiratory AE within this long after the end of plasma [UNCONF 6 h TRALI].
    trali_hours: float = 6.0
    #: PE-05: a catheter complication with onset this long after a PE start [DC] (the
    #: catheter's removal is not a fact yet, so W_INF_PE's 72 h stands in for it).
    catheter_hours: float = 72.0


@dataclass(frozen=True, slots=True)
class LiverProgressionConfig:
    """RULES.md §5.3: LFP-01 MELD ceiling, LFP-02 rise, MELD input pairing, LFP-03 CLIF-C OF."""

    meld_alert: float = 30.0
    meld_rise: float = 5.0
    meld_lowest_lookback_days: float = 14.0
    meld_inputs_within_hours: float = 48.0
    dialysis_lookback_days: float = 7.0
    dialysis_treatments: float = 2.0
    #: CLIF-C organ failures (EASL-CLIF): bilirubin >= 12 mg/dL, Cr >= 2.0 mg/dL, INR >= 2.5.
    of_bilirubin_umol_l: float = 205.2
    of_creatinine_umol_l: float = 176.8
    of_inr: float = 2.5
    of_west_haven: float = 3.0
    #: A lab, West Haven grade, RRT or vasopressor this recent counts as current [DC].
    of_current_hours: float = 48.0


@dataclass(frozen=True, slots=True)
class AkiConfig:
    """RULES.md §6: creatinine history handed to KDIGO staging, and how long RRT counts.

    The 48-h absolute-rise window is KDIGO's and fixed in `calculators.aki`; a baseline
    lookback shorter than its 7 days narrows the series the calculator sees.
    """

    baseline_window_days: float = 7.0
    rrt_current_hours: float = 48.0
    #: AKI-04: ICA stage >= 2 persisting this long (ICA 2015: 2 days of treatment).
    hrs_persist_hours: float = 48.0
    #: AKI-05 (KDIGO): urine output below this for this many consecutive hours; hourly
    #: measurements further apart than `uo_max_gap_hours` break the run [DC].
    uo_ml_kg_h: float = 0.5
    uo_hours: float = 6.0
    uo_max_gap_hours: float = 1.5


@dataclass(frozen=True, slots=True)
class SaeFollowUpConfig:
    """RULES.md §1: SAE-02 sponsor-report clock; SAE-05 U0 signal needs an SAE-01 in 24 h."""

    sae_within_hours: float = 24.0
    #: SAE-02: sponsor report due this long after investigator awareness (ICH E6(R2)
    #: 4.11.1 "immediately", operationalised as 24 h), and the reminder this long before.
    sponsor_report_hours: float = 24.0
    reminder_before_hours: float = 4.0


@dataclass(frozen=True, slots=True)
class SusarClockConfig:
    """SUSAR-01 report clocks to the authority, from day 0 (ICH E2A; EU CT Reg. 536/2014 Art. 42).

    A fatal or life-threatening SUSAR: initial report within 7 days, complete within 15 (7 +
    8); any other SUSAR: complete report within 15 days. The reminder goes this long before
    each deadline [DC 48 h: a working day's notice even over a weekend].
    """

    initial_report_days: float = 7.0
    complete_report_days: float = 15.0
    reminder_before_hours: float = 48.0


@dataclass(frozen=True, slots=True)
class StoppingConfig:
    """RULES.md §8.2 STOP-03: sentinel window after a UC-MSC infusion or PE session [DC]."""

    sentinel_days: float = 7.0


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    """RULES.md §0.2: re-fire policy, lateness, consolidation and history retention."""

    refire_quiet_hours: float = 72.0
    late_after_hours: float = 24.0
    #: A late fact whose clinical time is within this much of the newest fact still finds
    #: every observation its windows need; older ones are pruned from the projection.
    late_data_allowance_days: float = 7.0
    #: A correction arriving this long after a signal (clinical time) no longer retracts
    #: it: the signal's record is dropped to keep the projection bounded [DC].
    retraction_horizon_days: float = 90.0


@dataclass(frozen=True, slots=True)
class TrialConfig:
    """All [DC] thresholds of one trial, with the RULES.md defaults."""

    trial_id: str = "NCT01724398"
    version: str = "NCT01724398.v1"
    he: HepaticEncephalopathyConfig = field(default_factory=HepaticEncephalopathyConfig)
    bleeding: BleedingConfig = field(default_factory=BleedingConfig)
    infection: InfectionConfig = field(default_factory=InfectionConfig)
    procedures: ProcedureConfig = field(default_factory=ProcedureConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    liver: LiverProgressionConfig = field(default_factory=LiverProgressionConfig)
    aki: AkiConfig = field(default_factory=AkiConfig)
    sae: SaeFollowUpConfig = field(default_factory=SaeFollowUpConfig)
    susar: SusarClockConfig = field(default_factory=SusarClockConfig)
    stopping: StoppingConfig = field(default_factory=StoppingConfig)
    #: Live version of each rule that has more than one (rule id, version); a rule not
    #: named runs version 1. The engine refuses an unknown rule or version.
    rule_versions: tuple[tuple[str, int], ...] = ()

    def __hash__(self) -> int:
        """Hash the identifying fields only: cheap, and consistent with `==`.

        The engine looks a configuration's compiled rules and its retention table up by
        configuration (`functools.lru_cache`); hashing every nested threshold made that a
        few µs per fact, on the fold's hot path. Equal configurations have equal ids,
        versions and rule versions, so equal hashes; two that differ only in a threshold
        merely share a hash bucket, and `==` still tells them apart. Not cached on the
        instance, so a pickled config (replay workers) hashes with its own process's
        string hashing.
        """
        return hash((self.trial_id, self.version, self.rule_versions))

    def rule_version(self, rule_id: str) -> int:
        """The version of `rule_id` this configuration runs (1 unless chosen)."""
        return dict(self.rule_versions).get(rule_id, 1)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TrialConfig:
        """Build a config from parsed TOML; unknown or mistyped keys raise ValueError."""
        trial = _section(data, "trial", {"id", "config_version"})
        unknown = set(data) - {"trial", "rule_versions", *_SECTIONS}
        if unknown:
            raise ValueError(f"unknown config sections: {', '.join(sorted(unknown))}")
        sections = {name: _build(kind, _table(data, name)) for name, kind in _SECTIONS.items()}
        return cls(
            trial_id=str(trial["id"]),
            version=str(trial["config_version"]),
            rule_versions=_versions(_table(data, "rule_versions")),
            **sections,
        )


_SECTIONS: dict[str, type[Any]] = {
    "he": HepaticEncephalopathyConfig,
    "bleeding": BleedingConfig,
    "infection": InfectionConfig,
    "procedures": ProcedureConfig,
    "alerting": AlertingConfig,
    "liver": LiverProgressionConfig,
    "aki": AkiConfig,
    "sae": SaeFollowUpConfig,
    "susar": SusarClockConfig,
    "stopping": StoppingConfig,
}


def hours(value: float) -> timedelta:
    """Turn a configured number of hours into a timedelta."""
    return timedelta(hours=value)


def days(value: float) -> timedelta:
    """Turn a configured number of days into a timedelta."""
    return timedelta(days=value)


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise ValueError(f"[{name}] must be a table")  # noqa: TRY004 - one error type for the loader
    return table


def _section(data: Mapping[str, Any], name: str, required: set[str]) -> Mapping[str, Any]:
    table = _table(data, name)
    missing = required - set(table)
    extra = set(table) - required
    if missing or extra:
        raise ValueError(f"[{name}] needs exactly: {', '.join(sorted(required))}")
    return table


def _versions(table: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    chosen: list[tuple[str, int]] = []
    for rule_id, version in sorted(table.items()):
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"rule_versions.{rule_id}: expected a version number >= 1")
        chosen.append((rule_id, version))
    return tuple(chosen)


#: Keys released configurations set that no longer change anything: still parsed (and
#: type-checked) so an old file loads and the audit can replay it, then dropped.
#: `alerting.defer_ae_pages_to_sae01` rewrote an AE-route rule's U0 page to U3 when SAE-01
#: paged the same people on the same report; rules now keep their clinical urgency and
#: notify sends each person one page per causing fact.
_RETIRED_BOOLEANS: dict[type[Any], frozenset[str]] = {
    AlertingConfig: frozenset({"defer_ae_pages_to_sae01"}),
}


def _build(kind: type[Any], table: Mapping[str, Any]) -> Any:  # noqa: ANN401 - a section
    retired = _RETIRED_BOOLEANS.get(kind, frozenset())
    for name in sorted(retired & set(table)):
        if not isinstance(table[name], bool):
            msg = f"{kind.__name__}.{name}: expected a boolean (retired, ignored)"
            raise ValueError(msg)  # noqa: TRY004 - one error type for the loader
    table = {name: value for name, value in table.items() if name not in retired}
    known = {f.name: f for f in fields(kind)}
    unknown = set(table) - set(known)
    if unknown:
        raise ValueError(f"unknown keys for {kind.__name__}: {', '.join(sorted(unknown))}")
    values: dict[str, float | bool] = {}
    for name, value in table.items():
        expects_bool = isinstance(known[name].default, bool)
        if expects_bool != isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"{kind.__name__}.{name}: expected {'a boolean' if expects_bool else 'a number'}"
            )
        if not expects_bool and value < 0:
            raise ValueError(f"{kind.__name__}.{name}: must not be negative")
        values[name] = value if expects_bool else float(value)
    return kind(**values)


DEFAULT_CONFIG = TrialConfig()
