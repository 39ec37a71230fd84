"""Turn a participant's tasks into submissions: labs, vital signs, assessments (demo tooling)."""

from __future__ import annotations

from typing import Final, cast

from tools.demo._clock import DAY, HOUR
from tools.demo._codes import BLOOD_CULTURE_LOINC, IONISED_CALCIUM_LOINC, LabSpec
from tools.demo._emit import Emitter, Handler, Out
from tools.demo._tasks import (
    ASSESSMENT,
    CULTURE,
    EXTRA_ASSESSMENT,
    EXTRA_VITALS,
    LAB,
    LABS,
    VITALS,
)

_IONISED_CALCIUM: Final = LabSpec(-1, IONISED_CALCIUM_LOINC, "mmol/L", 1.0, 2, 1.12, 1.32, "blood")
# Minutes after the chemistry results that the other sections report (negative = earlier):
# haematology and ammonia come back first, coagulation next.
_SECTION_DELAY: Final = (0, -30, 0, 0, 0, 0, 0, -60, -60, -60, -45)
_EARLIEST_SECTION: Final = min(_SECTION_DELAY)


class MeasurementEmitter(Emitter):
    """Render one participant's tasks into submissions with their send times."""

    def _dispatch(self) -> dict[int, Handler]:
        return {
            **super()._dispatch(),
            LABS: self._labs,
            VITALS: self._vitals,
            EXTRA_VITALS: self._vitals,
            ASSESSMENT: self._assessment,
            EXTRA_ASSESSMENT: self._assessment,
            LAB: self._lab,
            CULTURE: self._culture,
        }

    def _lab_item(
        self,
        spec: LabSpec,
        value: float | int,
        sent: int,
        stamps: tuple[str, str],
    ) -> Out:
        payload = {
            "loinc": spec.loinc,
            "result": {"value": value, "unit": spec.unit},
            "reference_low": spec.low,
            "reference_high": spec.high,
            "specimen": spec.specimen,
        }
        return self._out(
            sent,
            "lab_result_recorded",
            stamps[0],
            "lab",
            f"lab:{self.pid}:{spec.loinc}:{stamps[1]}",
            payload,
        )

    def _labs(self, minute: int, _: object) -> list[Out]:
        values = self.course.labs(minute, self.rng)
        sent = minute + self._randint(90, 300)
        if sent + _EARLIEST_SECTION <= self.enrolment_sent:  # baseline bloods: rare path
            return [
                self._lab_item(
                    spec,
                    spec.value(values[spec.analyte]),
                    sent + delay,
                    self.clock.stamps(minute, local=self._lab_stamps),
                )
                for spec, delay in zip(self.specs, _SECTION_DELAY, strict=True)
            ]
        # Hot path, inlined: a quarter of a million panels per million submissions.
        occurred, ref = self.clock.stamps(minute, local=self._lab_stamps)
        prefix, suffix = f"lab:{self.pid}:", f":{ref}"
        head = (self.ctx.trial_id, self.enrolment.site_id, self.pid)
        out = []
        seq = self.seq
        for spec, delay in zip(self.specs, _SECTION_DELAY, strict=True):
            seq += 1
            out.append(
                (
                    sent + delay,
                    seq,
                    {
                        "event_type": "lab_result_recorded",
                        "trial_id": head[0],
                        "site_id": head[1],
                        "participant_id": head[2],
                        "occurred_at": occurred,
                        "source": "lab",
                        "source_ref": prefix + spec.loinc + suffix,
                        "payload": {
                            "loinc": spec.loinc,
                            "result": {
                                "value": spec.value(values[spec.analyte]),
                                "unit": spec.unit,
                            },
                            "reference_low": spec.low,
                            "reference_high": spec.high,
                            "specimen": spec.specimen,
                        },
                    },
                )
            )
        self.seq = seq
        self.last_sent = max(self.last_sent, sent + max(_SECTION_DELAY))
        return out

    def _lab(self, minute: int, data: object) -> list[Out]:
        analyte, value = cast("tuple[int | str, float | None]", data)
        sent = minute + self.rng.randint(40, 120)  # stat request
        stamps = self.clock.stamps(minute, local=self._lab_stamps)
        if analyte == "ionised_calcium":
            measured = value if value is not None else round(self.rng.uniform(1.03, 1.16), 2)
            return [self._lab_item(_IONISED_CALCIUM, measured, sent, stamps)]
        spec = self.specs[int(analyte)]
        canonical = value if value is not None else self.course.labs(minute, None)[spec.analyte]
        return [self._lab_item(spec, spec.value(canonical), sent, stamps)]

    def _culture(self, minute: int, positive: object) -> list[Out]:
        if not self.ctx.blood_cultures:
            return []
        # Qualitative result: 1 = organism grown, 0 = no growth; final after 2-3 days.
        spec = LabSpec(-1, BLOOD_CULTURE_LOINC, "1", 1.0, 0, 0, 0, "blood")
        sent = minute + self.rng.randint(2 * DAY, 3 * DAY)
        stamps = self.clock.stamps(minute, local=self._lab_stamps)
        return [self._lab_item(spec, 1.0 if positive else 0.0, sent, stamps)]

    def _vitals(self, minute: int, _: object) -> list[Out]:
        temperature, heart_rate, respiratory_rate, systolic, diastolic, spo2 = self.course.vitals(
            minute, self.rng
        )
        occurred, ref = self.clock.stamps(minute, local=self._lab_stamps)
        sent = minute + 1 + int(self._random() * 20)
        if sent <= self.enrolment_sent:  # baseline vital signs wait for the randomisation
            sent = self.enrolment_sent + 1
        self.last_sent = max(self.last_sent, sent)
        self.seq += 1
        # Built inline (no _out): daily vital signs are a quarter of the early feed.
        return [
            (
                sent,
                self.seq,
                {
                    "event_type": "vital_signs_recorded",
                    "trial_id": self.ctx.trial_id,
                    "site_id": self.enrolment.site_id,
                    "participant_id": self.pid,
                    "occurred_at": occurred,
                    "source": "vitals",
                    "source_ref": f"vitals:{self.pid}:{ref}",
                    "payload": {
                        "observations": {
                            "temperature": {"value": temperature, "unit": "Cel"},
                            "heart_rate": {"value": heart_rate, "unit": "/min"},
                            "respiratory_rate": {"value": respiratory_rate, "unit": "/min"},
                            "systolic_bp": {"value": systolic, "unit": "mm[Hg]"},
                            "diastolic_bp": {"value": diastolic, "unit": "mm[Hg]"},
                            "spo2": {"value": spo2, "unit": "%"},
                        }
                    },
                },
            )
        ]

    def _assessment(self, minute: int, _: object) -> list[Out]:
        payload = {
            "west_haven_grade": self.course.west_haven(minute),
            "ascites": self.course.ascites(minute),
        }
        occurred, ref = self.clock.stamps(minute, local=False)
        return [
            self._out(
                minute + self._randint(20, 36 * HOUR),
                "clinical_assessment_recorded",
                occurred,
                "edc",
                f"edc:assessment:{self.pid}:{ref}",
                payload,
            )
        ]
