"""Building blocks for a participant's extra observations and AE reports (demo tooling)."""

from __future__ import annotations

from random import Random
from typing import Final

from tools.demo._clock import DAY, HOUR, Clock
from tools.demo._cohort import Enrolment
from tools.demo._course import Course
from tools.demo._tasks import (
    AE_VERSION,
    CULTURE,
    EXTRA_ASSESSMENT,
    EXTRA_VITALS,
    LAB,
    LABS,
    PROCEDURE,
    SPONSOR_REPORT,
    Episode,
    Procedure,
    Task,
    Version,
)

NOT_APPLICABLE: Final = "not_applicable"
INPATIENT_DAYS: Final = 28  # the protocol treatment phase is spent on the ward


class Planner:
    """Collect one participant's non-routine tasks while its AE episodes are planned."""

    def __init__(
        self, enrolment: Enrolment, course: Course, rng: Random, clock: Clock, last_onset: int
    ) -> None:
        self.enrolment = enrolment
        self.course = course
        self.rng = rng
        self.clock = clock
        self.t0 = enrolment.randomised_at
        self.last_onset = last_onset  # no AE may start later (death, withdrawal, horizon)
        self.tasks: list[Task] = []
        self.procedures: list[Procedure] = []
        self.episodes: list[Episode] = []
        self._extra_minutes: set[int] = set()
        self._late_report_due = enrolment.late_sponsor_report

    # -- tasks -------------------------------------------------------------------------------

    def add(self, minute: int, kind: int, data: object) -> None:
        """Add a task; orders are unique, so ties never compare the data."""
        self.tasks.append((minute, 1_000_000 + len(self.tasks), kind, data))

    def off_grid(self, minute: int) -> int:
        """Move an extra observation off the routine 5-minute grid and off other extras.

        Source record ids carry the minute, so this keeps (source, source_ref) unique.
        """
        while self.clock.is_on_grid(minute) or minute in self._extra_minutes:
            minute += 1
        self._extra_minutes.add(minute)
        return minute

    def lab(self, minute: int, analyte: int | str, value: float | None = None) -> None:
        """Add an unscheduled (stat) lab; `value` None means the course's value then."""
        self.add(self.off_grid(minute), LAB, (analyte, value))

    def panel(self, minute: int) -> None:
        """Add an unscheduled full routine panel (admission bloods, say)."""
        self.add(self.off_grid(minute), LABS, None)

    def vitals(self, minute: int) -> None:
        """Add an unscheduled set of vital signs."""
        self.add(self.off_grid(minute), EXTRA_VITALS, None)

    def assessment(self, minute: int) -> None:
        """Add an unscheduled West Haven / ascites assessment."""
        self.add(self.off_grid(minute), EXTRA_ASSESSMENT, None)

    def culture(self, minute: int, *, positive: bool) -> None:
        """Add a blood culture; its result arrives two to three days later."""
        self.add(self.off_grid(minute), CULTURE, positive)

    def procedure(self, procedure: Procedure) -> None:
        """Add a procedure with vital signs just before and after it."""
        self.procedures.append(procedure)
        self.add(procedure.start, PROCEDURE, procedure)
        if procedure.kind != "rbc_transfusion":
            self.vitals(procedure.start - self.rng.randint(5, 15))
            self.vitals(procedure.end + self.rng.randint(30, 60))

    def transfusion(self, minute: int) -> None:
        """Add a two-unit red-cell transfusion from the blood bank."""
        count = sum(p.kind == "rbc_transfusion" for p in self.procedures)
        self.procedure(Procedure("rbc_transfusion", count + 1, minute, minute + 180))

    # -- adverse events ----------------------------------------------------------------------

    def related(self, uc_msc: str, plasma_exchange: str) -> tuple[str, str]:
        """Causality per procedure; not applicable for a procedure the arm does not get."""
        arm = self.enrolment.arm
        return (
            uc_msc if arm in {"B", "D"} else NOT_APPLICABLE,
            plasma_exchange if arm in {"C", "D"} else NOT_APPLICABLE,
        )

    def fits(self, onset: int) -> bool:
        """Whether an AE starting then fits before death, withdrawal and the horizon."""
        return self.t0 < onset <= self.last_onset

    def _aware(self, onset: int, *, serious: bool) -> tuple[int, int]:
        """Investigator awareness and the time the EDC record is sent."""
        randint = self.rng.randint
        if onset - self.t0 < INPATIENT_DAYS * DAY:
            awareness = onset + randint(10, 4 * HOUR)
        elif serious:
            awareness = onset + randint(2 * HOUR, 24 * HOUR)
        else:  # told at the next clinic contact
            awareness = onset + randint(DAY, 4 * DAY)
        send = awareness + (randint(HOUR, 14 * HOUR) if serious else randint(4 * HOUR, 4 * DAY))
        return awareness, send

    def _sponsor_report(self, episode: Episode, awareness: int) -> None:
        if self._late_report_due:  # breaches the 24 h clock (RULES.md SAE-02)
            self._late_report_due = False
            due = awareness + self.rng.randint(26 * HOUR, 40 * HOUR)
        else:
            due = awareness + self.rng.randint(2 * HOUR, 20 * HOUR)
        self.add(due, SPONSOR_REPORT, episode)

    def report(  # noqa: PLR0913 - keyword-only attributes of one AE, named at each call
        self,
        term: str,
        onset: int,
        grade: int,
        related: tuple[str, str],
        *,
        llt: str | None = None,
        expectedness: str = "expected",
        seriousness: tuple[str, ...] = (),
        lasts: int | None = None,
        upgrade: tuple[int, int, tuple[str, ...]] | None = None,
    ) -> Episode:
        """Plan an AE: first report, optional upgrade (delay, grade, criteria), resolution."""
        randint = self.rng.randint
        episode = Episode(
            f"{self.enrolment.participant_id}-AE{len(self.episodes) + 1:02d}",
            term,
            llt,
            onset,
            related[0],
            related[1],
            expectedness,
        )
        self.episodes.append(episode)
        awareness, send = self._aware(onset, serious=bool(seriousness))
        resolved = onset + lasts if lasts is not None else None
        if resolved is not None and resolved < send and upgrade is None:
            # Over before it was reported: the first record is also the last.
            episode.versions.append(
                Version(onset, send, grade, seriousness, "recovered", awareness)
            )
            resolved = None
        else:
            episode.versions.append(
                Version(onset, send, grade, seriousness, "not_recovered", awareness)
            )
        if seriousness:
            self._sponsor_report(episode, awareness)
        if upgrade is not None:
            delay, grade, seriousness = upgrade
            at = max(onset + delay, send + 2 * HOUR)
            awareness = at + randint(30, 4 * HOUR)  # aware it is serious: the clock starts
            send = awareness + randint(HOUR, 10 * HOUR)
            episode.versions.append(
                Version(at, send, grade, seriousness, "not_recovered", awareness)
            )
            self._sponsor_report(episode, awareness)
            if resolved is not None:
                resolved = max(resolved, at + 3 * DAY)
        if resolved is not None:
            send = max(resolved + randint(2 * HOUR, 3 * DAY), send + 10)
            episode.versions.append(
                Version(resolved, send, grade, seriousness, "recovered", awareness)
            )
        for index, version in enumerate(episode.versions):
            self.add(version.at, AE_VERSION, (episode, index))
        return episode
