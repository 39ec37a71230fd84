"""Build submissions, and the EDC and pharmacy records among them (demo tooling).

Dicts are built by hand, not through pydantic, so a million of them stay cheap. Key order is
fixed, so the same seed gives byte-identical JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any, Final, cast

from tools.demo._clock import DAY, HOUR, FeedContext
from tools.demo._codes import LabSpec, SiteProfile
from tools.demo._cohort import Enrolment
from tools.demo._course import Course
from tools.demo._tasks import (
    AE_VERSION,
    DEATH,
    ENROLMENT,
    PROCEDURE,
    SPONSOR_REPORT,
    WITHDRAWAL,
    Ending,
    Episode,
    Procedure,
    Task,
    Version,
)

Item = dict[str, Any]
Out = tuple[int, int, Item]  # (minute sent, feed-wide order for ties, submission)
Handler = Callable[[int, object], list[Out]]

_PROCEDURE_SOURCE: Final = {
    "uc_msc_infusion": ("pharmacy", "uc-msc"),
    "plasma_exchange": ("edc", "pe"),
    "rbc_transfusion": ("pharmacy", "rbc"),
}


class Emitter:
    """Make one participant's submissions; tracks the sequence and the latest send time."""

    def __init__(  # noqa: PLR0913 - the participant's collaborators, built in one place
        self,
        enrolment: Enrolment,
        ctx: FeedContext,
        course: Course,
        rng: Random,
        profile: SiteProfile,
        specs: tuple[LabSpec, ...],
        *,
        enrolment_sent: int,
        baseline_meld: int,
        order_base: int,
    ) -> None:
        self.enrolment = enrolment
        self.ctx = ctx
        self.clock = ctx.clock
        self.course = course
        self.rng = rng
        self.profile = profile
        self.specs = specs
        self.pid = enrolment.participant_id
        self.enrolment_sent = enrolment_sent
        self.baseline_meld = baseline_meld
        self.seq = order_base  # the participant's place in the cohort, shifted left
        self.last_sent = enrolment_sent
        self._random = rng.random
        self._lab_stamps = profile.local_lab_times
        self._handlers = self._dispatch()

    def _dispatch(self) -> dict[int, Handler]:
        """Map each task kind to the method that renders it."""
        return {
            ENROLMENT: self._enrolment,
            PROCEDURE: self._procedure,
            AE_VERSION: self._ae_version,
            SPONSOR_REPORT: self._sponsor_report,
            DEATH: self._ending,
            WITHDRAWAL: self._ending,
        }

    def render(self, task: Task) -> list[Out]:
        """Return the submissions one task produces, with their send times."""
        minute, _, kind, data = task
        return self._handlers[kind](minute, data)

    def _randint(self, low: int, high: int) -> int:
        return low + int(self._random() * (high - low + 1))

    def _out(
        self, sent: int, event_type: str, occurred_at: str, source: str, ref: str, payload: Item
    ) -> Out:
        # Nothing of a participant arrives before the randomisation record.
        if sent <= self.enrolment_sent and event_type != "participant_enrolled":
            sent = self.enrolment_sent + 1
        self.last_sent = max(self.last_sent, sent)
        self.seq += 1
        return (
            sent,
            self.seq,
            {
                "event_type": event_type,
                "trial_id": self.ctx.trial_id,
                "site_id": self.enrolment.site_id,
                "participant_id": self.pid,
                "occurred_at": occurred_at,
                "source": source,
                "source_ref": ref,
                "payload": payload,
            },
        )

    def _enrolment(self, minute: int, _: object) -> list[Out]:
        payload = {
            "arm": self.enrolment.arm,
            "baseline_meld": self.baseline_meld,
            "sex": self.enrolment.sex,
        }
        return [
            self._out(
                self.enrolment_sent,
                "participant_enrolled",
                self.clock.utc(minute),
                "edc",
                f"edc:randomisation:{self.pid}",
                payload,
            )
        ]

    def _procedure(self, minute: int, data: object) -> list[Out]:
        procedure = cast("Procedure", data)
        payload: Item = {
            "treatment": procedure.kind,
            "ended_at": self.clock.utc(procedure.end),
            "sequence_number": procedure.sequence,
        }
        if procedure.kind == "uc_msc_infusion":
            payload["dose_cells_per_kg"] = 1e5
        elif procedure.kind == "plasma_exchange":
            payload["volume_ml"] = 2000.0
            payload["replacement_fluid"] = "ffp"
        else:
            payload["volume_ml"] = 400.0  # two units
        source, short = _PROCEDURE_SOURCE[procedure.kind]
        return [
            self._out(
                procedure.end + self.rng.randint(HOUR, 6 * HOUR),
                "treatment_administered",
                self.clock.utc(minute),
                source,
                f"{source}:{short}:{self.pid}:{procedure.sequence}",
                payload,
            )
        ]

    def _ae_item(self, episode: Episode, index: int, version: Version) -> Out:
        payload: Item = {"ae_ref": episode.ref, "term": episode.term}
        if episode.llt is not None:
            payload["meddra_llt_code"] = episode.llt
        payload.update(
            {
                "ctcae_grade": version.grade,
                "seriousness_criteria": list(version.seriousness),
                "relatedness_uc_msc": episode.relatedness_uc_msc,
                "relatedness_plasma_exchange": episode.relatedness_plasma_exchange,
                "expectedness": episode.expectedness,
                "outcome": version.outcome,
                "awareness_at": self.clock.iso(
                    version.awareness, local=self.profile.local_awareness
                ),
            }
        )
        kind = "adverse_event_reported" if index == 0 else "adverse_event_updated"
        return self._out(
            version.send,
            kind,
            self.clock.utc(episode.onset),
            "edc",
            f"edc:ae:{episode.ref}:v{index + 1}",
            payload,
        )

    def _ae_version(self, _: int, data: object) -> list[Out]:
        episode, index = cast("tuple[Episode, int]", data)
        return [self._ae_item(episode, index, episode.versions[index])]

    def _sponsor_report(self, minute: int, data: object) -> list[Out]:
        episode = cast("Episode", data)
        return [
            self._out(
                minute + self.rng.randint(1, 30),
                "sae_reported_to_sponsor",
                self.clock.utc(minute),
                "edc",
                f"edc:sae-report:{episode.ref}",
                {"ae_ref": episode.ref},
            )
        ]

    def _ending(self, minute: int, data: object) -> list[Out]:
        ending = cast("Ending", data)
        randint = self.rng.randint
        if ending.kind == "withdrawal":
            sent = max(minute + randint(HOUR, 2 * DAY), self.last_sent + 5)
            return [
                self._out(
                    sent,
                    "participant_withdrawn",
                    self.clock.utc(minute),
                    "edc",
                    f"edc:withdrawal:{self.pid}",
                    {"reason": ending.category},
                )
            ]
        # The death record comes after everything else about the participant; only the
        # fatal outcome of the AE that caused it follows.
        sent = max(minute + randint(2 * HOUR, 12 * HOUR), self.last_sent + 5)
        payload: Item = {"cause_category": ending.category}
        if ending.fatal_episode is not None:
            payload["related_ae_ref"] = ending.fatal_episode.ref
        out = [
            self._out(
                sent,
                "death_recorded",
                self.clock.utc(minute),
                "edc",
                f"edc:death:{self.pid}",
                payload,
            )
        ]
        episode = ending.fatal_episode
        if episode is not None:
            last = episode.versions[-1]
            seriousness = last.seriousness + (() if "death" in last.seriousness else ("death",))
            final = Version(minute, sent + randint(10, 90), 5, seriousness, "fatal", last.awareness)
            out.append(self._ae_item(episode, len(episode.versions), final))
        return out
