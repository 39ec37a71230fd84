"""Plain records a participant's plan is made of: procedures, AE episodes, tasks (demo tooling)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# Task kinds. A task is (clinical minute, order, kind, data); rendering turns it into items.
LABS, VITALS, ASSESSMENT, ENROLMENT, PROCEDURE, LAB, EXTRA_VITALS, EXTRA_ASSESSMENT = range(8)
CULTURE, AE_VERSION, SPONSOR_REPORT, DEATH, WITHDRAWAL = range(8, 13)
#: Order of the task that ends a participant's stream: after anything at the same minute.
TERMINAL_ORDER: Final = 10**12

Task = tuple[int, int, int, object]


@dataclass(frozen=True, slots=True)
class Procedure:
    """A UC-MSC infusion, plasma exchange or red-cell transfusion."""

    kind: str  # "uc_msc_infusion" | "plasma_exchange" | "rbc_transfusion"
    sequence: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Version:
    """The state of an AE as one EDC record sends it."""

    at: int  # clinical time of this change (onset for the first report)
    send: int
    grade: int
    seriousness: tuple[str, ...]
    outcome: str
    awareness: int


@dataclass(slots=True)
class Episode:
    """One adverse event: its fixed attributes and the versions the EDC sends."""

    ref: str
    term: str
    llt: str | None
    onset: int
    relatedness_uc_msc: str
    relatedness_plasma_exchange: str
    expectedness: str
    versions: list[Version] = field(default_factory=list)

    @property
    def serious(self) -> bool:
        """Whether the AE is serious in its latest version."""
        return bool(self.versions[-1].seriousness)


@dataclass(frozen=True, slots=True)
class Ending:
    """Death or withdrawal: the last task of a participant's stream."""

    kind: str  # "death" | "withdrawal"
    at: int
    category: str  # cause_category of a death, reason of a withdrawal
    fatal_episode: Episode | None = None
