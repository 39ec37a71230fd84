"""What the DSMB report needs to know about the trial (core layer; data only, no I/O).

Defaults are RULES.md §0.1 (planned procedures), §4.1 (procedure windows) and §8.2 (stopping
rules); every one of them is a design choice [DC] the sponsor confirms, so the adapter loads
them from a versioned TOML file (`trial_config/NCT01724398.dsmb.v1.toml`) and the report
states which version it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

ARMS: Final = ("A", "B", "C", "D")


def _frozen(values: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(values))


#: How the report shows a reported term that is not a catalogue (coded) term.
UNCODED_TERM: Final = "Uncoded term (verbatim withheld)"


@dataclass(frozen=True, slots=True)
class Stop01:
    """STOP-01 procedure-related serious toxicity: Beta prior and decision boundary."""

    prior_alpha: float = 0.3
    prior_beta: float = 1.7
    rate: float = 0.15
    probability: float = 0.90
    window_days: int = 28


@dataclass(frozen=True, slots=True)
class Stop02:
    """STOP-02 mortality harm against the control arm (Beta(1,1) priors)."""

    windows_days: tuple[int, ...] = (28, 84)
    probability: float = 0.95
    min_difference: float = 0.15


@dataclass(frozen=True, slots=True)
class Schedule:
    """When reports are issued: monthly, and ad hoc after a STOP trigger [DC]."""

    day_of_month: int = 1
    hour_utc: int = 0
    ad_hoc_within_hours: int = 24


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """Trial facts and [DC] parameters of the DSMB report.

    Attributes:
        version: Recorded in every report, so a figure can be traced to its parameters.
        planned_uc_msc: UC-MSC infusions planned per participant, by arm (§0.1: 4 in B, D).
        planned_pe: Plasma-exchange sessions planned per participant, by arm (§0.1: 3 in C, D).
        follow_up_days: Follow-up per participant (48 weeks).
        msc_window_hours: AESI window after a UC-MSC infusion start (W_INF_MSC, 7 d).
        pe_window_hours: AESI window after a PE start (W_INF_PE, 72 h).
        msc_reaction_hours: Infusion-reaction window after a UC-MSC infusion end (W_IR_MSC).
        pe_reaction_hours: Reaction and iCa window after a PE end (W_IR_PE, 6 h).
        sentinel_days: STOP-03 window after a procedure start (7 d).
        transfusion_hours: STOP-01 bleeding "needing transfusion": RBC within this after onset.
        culture_hours: STOP-01 catheter bloodstream infection: positive culture within ± this.
        sponsor_clock_hours: SAE-02 investigator → sponsor clock (24 h).
        meld_pairing_hours: MELD inputs must lie within this of each other (§5.1).
        susar_same_term: STOP-04 ad hoc meeting at this many SUSARs of one term in one arm.
        verbatim_terms: show reported AE terms verbatim (closed session only); otherwise a
            term outside the catalogue is shown as `UNCODED_TERM` (it is free text).

    """

    version: str = "NCT01724398.dsmb.v1"
    trial_id: str = "NCT01724398"
    control_arm: str = "A"
    planned_uc_msc: Mapping[str, int] = field(
        default_factory=lambda: _frozen({"A": 0, "B": 4, "C": 0, "D": 4})
    )
    planned_pe: Mapping[str, int] = field(
        default_factory=lambda: _frozen({"A": 0, "B": 0, "C": 3, "D": 3})
    )
    follow_up_days: int = 336
    msc_window_hours: int = 168
    pe_window_hours: int = 72
    msc_reaction_hours: int = 24
    pe_reaction_hours: int = 6
    sentinel_days: int = 7
    transfusion_hours: int = 72
    culture_hours: int = 72
    sponsor_clock_hours: int = 24
    meld_pairing_hours: int = 48
    susar_same_term: int = 2
    verbatim_terms: bool = False
    stop01: Stop01 = field(default_factory=Stop01)
    stop02: Stop02 = field(default_factory=Stop02)
    schedule: Schedule = field(default_factory=Schedule)

    @property
    def procedure_arms(self) -> tuple[str, ...]:
        """Arms that receive UC-MSC or PE (STOP-01 and STOP-03 apply to them)."""
        return tuple(a for a in ARMS if self.planned_uc_msc[a] or self.planned_pe[a])
