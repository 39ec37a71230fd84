"""Load the report's versioned TOML configuration into the core `ReportConfig` (adapters).

The packaged default is `services/report/trial_config/NCT01724398.dsmb.v1.toml`. Every key is
required, so a file can never silently fall back to a default the DSMB charter did not set.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from services.report.core.config import ARMS, ReportConfig, Schedule, Stop01, Stop02
from services.report.core.errors import ConfigurationError

DEFAULT_REPORT_CONFIG: Final = (
    Path(__file__).resolve().parents[1] / "trial_config" / "NCT01724398.dsmb.v1.toml"
)


def load_report_config(path: Path | None = None) -> ReportConfig:
    """Read a report configuration file (the packaged default when `path` is None).

    Raises:
        ConfigurationError: the file cannot be read, is not TOML, or lacks or mistypes a key.

    """
    source = path or DEFAULT_REPORT_CONFIG
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
        return _config(data)
    except OSError as exc:
        raise ConfigurationError(f"{source}: cannot read: {type(exc).__name__}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not TOML: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{source}: invalid report configuration: {exc!r}") from exc


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, not {value!r}")
    return value


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a non-negative number, not {value!r}")
    return float(value)


def _per_arm(table: dict[str, object]) -> MappingProxyType[str, int]:
    if set(table) != set(ARMS):
        raise ValueError(f"planned counts need exactly the arms {ARMS}, not {sorted(table)}")
    return MappingProxyType({arm: _int(table[arm]) for arm in ARMS})


def _config(data: dict[str, Any]) -> ReportConfig:
    windows, s1, s2, schedule = data["windows"], data["stop01"], data["stop02"], data["schedule"]
    return ReportConfig(
        version=str(data["version"]),
        trial_id=str(data["trial_id"]),
        control_arm=str(data["control_arm"]),
        planned_uc_msc=_per_arm(data["planned"]["uc_msc"]),
        planned_pe=_per_arm(data["planned"]["pe"]),
        follow_up_days=_int(data["follow_up_days"]),
        msc_window_hours=_int(windows["msc_window_hours"]),
        pe_window_hours=_int(windows["pe_window_hours"]),
        msc_reaction_hours=_int(windows["msc_reaction_hours"]),
        pe_reaction_hours=_int(windows["pe_reaction_hours"]),
        sentinel_days=_int(windows["sentinel_days"]),
        transfusion_hours=_int(windows["transfusion_hours"]),
        culture_hours=_int(windows["culture_hours"]),
        sponsor_clock_hours=_int(windows["sponsor_clock_hours"]),
        meld_pairing_hours=_int(windows["meld_pairing_hours"]),
        susar_same_term=_int(data["stop04"]["susar_same_term"]),
        # [report] verbatim_terms = true: reported AE terms verbatim (closed session only).
        verbatim_terms=data.get("report", {}).get("verbatim_terms", False) is True,
        stop01=Stop01(
            prior_alpha=_float(s1["prior_alpha"]),
            prior_beta=_float(s1["prior_beta"]),
            rate=_float(s1["rate"]),
            probability=_float(s1["probability"]),
            window_days=_int(s1["window_days"]),
        ),
        stop02=Stop02(
            windows_days=tuple(_int(w) for w in s2["windows_days"]),
            probability=_float(s2["probability"]),
            min_difference=_float(s2["min_difference"]),
        ),
        schedule=Schedule(
            day_of_month=_int(schedule["day_of_month"]),
            hour_utc=_int(schedule["hour_utc"]),
            ad_hoc_within_hours=_int(schedule["ad_hoc_within_hours"]),
        ),
    )
