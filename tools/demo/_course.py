"""One participant's clinical course: lab, vital-sign and bedside values over time (demo tooling).

Values follow a plausible HBV-ACLF course in canonical SI units: high bilirubin and INR that
fall over weeks (or rise in a participant who is going to die), a hepatitis flare in ALT/AST
that settles within days, low albumin, sodium and platelets. Adverse-event episodes add
time-limited modifiers (fever, leucocytosis, a haemoglobin drop, a creatinine rise, a West
Haven grade) so the observations match the events reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from statistics import NormalDist
from typing import Final

from tools.demo._clock import DAY, HOUR
from tools.demo._codes import ALT, AST, BILIRUBIN, INR

ASCITES: Final = ("none", "mild", "moderate", "severe")
# Multiplicative day-to-day (analytical plus biological) variation per analyte, in order.
_CV: Final = (0.04, 0.04, 0.05, 0.08, 0.08, 0.03, 0.008, 0.07, 0.08, 0.03, 0.10)

# Standard normal quantiles: noise is one table look-up per value, far cheaper than gauss().
_ZN: Final = 4096
_Z: Final = tuple(NormalDist().inv_cdf((i + 0.5) / _ZN) for i in range(_ZN))

Window = tuple[int, int, float]  # start minute, end minute, size


@dataclass(slots=True)
class Modifiers:
    """Time-limited effects of adverse-event episodes on the observations."""

    fever: list[Window] = field(default_factory=list)  # peak temperature, tapering
    heart_rate: list[Window] = field(default_factory=list)  # beats/min added
    systolic_drop: list[Window] = field(default_factory=list)  # mmHg removed
    wbc: list[Window] = field(default_factory=list)  # 10^9/L added
    creatinine: list[Window] = field(default_factory=list)  # umol/L added, tapering
    west_haven: list[Window] = field(default_factory=list)  # grade
    ammonia: list[Window] = field(default_factory=list)  # umol/L added
    haemoglobin: list[tuple[int, float]] = field(default_factory=list)  # bleed onset, g/L lost


def _active(windows: list[Window], minute: int) -> float:
    return sum(size for start, end, size in windows if start <= minute <= end)


def _tapering(windows: list[Window], minute: int) -> float:
    total = 0.0
    for start, end, size in windows:
        if start <= minute <= end:
            total += size * (1.0 - 0.6 * (minute - start) / max(end - start, 1))
    return total


class Course:
    """The latent state of one participant, evaluated at any minute after randomisation."""

    def __init__(
        self,
        rng: Random,
        *,
        randomised_at: int,
        severity: float,
        sex: str,
        arm: str,
    ) -> None:
        """Draw the participant's parameters."""
        self.t0 = randomised_at
        # Terminal decline: start minute, growth rate per day, bilirubin growth at its end,
        # INR rise and relative creatinine rise at its end. None while not dying.
        self.decline: tuple[int, float, float, float, float] | None = None
        self.bilirubin0 = min(max(150.0 + 230.0 * severity + rng.gauss(0, 15), 150.0), 400.0)
        spread = min(max(severity + rng.gauss(0, 0.15), 0.0), 1.0)
        self.inr0 = round(1.5 + 1.0 * spread, 2)
        self.creatinine0 = rng.uniform(60, 105) if sex == "M" else rng.uniform(45, 85)
        slow = rng.random() < 0.15
        self.tau = rng.uniform(35, 70) if arm == "A" else rng.uniform(25, 55)
        self.tau *= 2.0 if slow else 1.0
        self.bilirubin_floor = rng.uniform(15, 45)
        self.inr_floor = rng.uniform(1.05, 1.2)
        self.alt0 = math.exp(rng.uniform(math.log(150), math.log(1200)))
        self.alt_floor = rng.uniform(25, 60)
        self.ast_ratio = rng.uniform(0.6, 1.1)
        self.albumin0, self.albumin_end = rng.uniform(26, 33), rng.uniform(33, 40)
        self.sodium0 = rng.uniform(130, 139)
        self.platelets0 = rng.uniform(55, 150)
        self.wbc0 = rng.uniform(3.5, 8.5)
        self.hb0 = rng.uniform(110, 145) if sex == "M" else rng.uniform(100, 130)
        self.ammonia0, self.ammonia_floor = rng.uniform(40, 95), rng.uniform(20, 35)
        self.temperature0 = rng.uniform(36.3, 36.9)
        self.heart_rate0 = rng.uniform(68, 92)
        self.respiratory_rate0 = rng.uniform(14, 18)
        self.systolic0 = rng.uniform(100, 130)
        self.diastolic0 = rng.uniform(60, 78)
        self.west_haven0 = 0 if rng.random() < 0.75 else 1
        self.ascites0 = rng.choices((0, 1, 2), weights=(3, 4.5, 2.5))[0]
        self.mods = Modifiers()

    def cap_baseline(self, meld_of: Callable[[Course], int]) -> None:
        """Lower INR, then bilirubin, until baseline MELD < 30 (inclusion criterion)."""
        while meld_of(self) >= 30:
            if self.inr0 > 1.55:
                self.inr0 = round(self.inr0 - 0.05, 2)
            else:
                self.bilirubin0 = max(self.bilirubin0 - 10.0, 150.0)

    def decline_until(self, rng: Random, start: int, death_at: int) -> None:
        """Worsen from `start` so bilirubin reaches 300-500 umol/L, INR 2.3-3.5 at death."""
        bilirubin = self.labs(start, None)[BILIRUBIN]
        growth = max(rng.uniform(300, 500) / bilirubin, 1.5)
        rate = math.log(growth) / ((death_at - start) / DAY)
        inr_rise = max(rng.uniform(2.3, 3.5) - self.labs(start, None)[INR], 0.5)
        self.decline = (start, rate, growth, inr_rise, rng.uniform(0.5, 2.0))

    def _days(self, minute: int) -> tuple[float, float, float]:
        """Days since randomisation, bilirubin growth and progress (0..1) of a decline."""
        days = max(minute - self.t0, 0) / DAY
        if self.decline is None or minute <= self.decline[0]:
            return days, 1.0, 0.0
        start, rate, growth, _, _ = self.decline
        worse = math.exp(rate * (minute - start) / DAY)
        return days, worse, (worse - 1.0) / (growth - 1.0)

    def labs(self, minute: int, rng: Random | None) -> list[float]:
        """Canonical SI values of the routine panel; `rng` adds measurement noise."""
        days, worse, loss = self._days(minute)
        settle = math.exp(-days / self.tau)
        bump = (days / 5.0) * math.exp(1.0 - days / 5.0)  # early peak of the flare at ~day 5
        inr_rise, creatinine_rise = (0.0, 0.0)
        if self.decline is not None and loss:
            inr_rise, creatinine_rise = self.decline[3], self.decline[4]
        values = [
            (
                self.bilirubin_floor
                + (self.bilirubin0 - self.bilirubin_floor) * settle * (1.0 + 0.12 * bump)
            )
            * worse,
            self.inr_floor
            + (self.inr0 - self.inr_floor)
            * math.exp(-days / (0.6 * self.tau))
            * (1.0 + 0.08 * bump)
            + inr_rise * loss,
            self.creatinine0 * (1.0 + creatinine_rise * loss)
            + _tapering(self.mods.creatinine, minute),
            self.alt_floor + (self.alt0 - self.alt_floor) * math.exp(-days / 6.0),
            0.0,
            self.albumin_end
            + (self.albumin0 - self.albumin_end) * math.exp(-days / 45.0)
            - 5.0 * loss,
            139.0 + (self.sodium0 - 139.0) * math.exp(-days / 20.0) - 6.0 * loss,
            self.platelets0 * (1.25 - 0.25 * math.exp(-days / 50.0)) / (1.0 + 0.5 * loss),
            self.wbc0 + _active(self.mods.wbc, minute) + 3.0 * loss,
            self.hb0 + self._bleeding(minute),
            (self.ammonia_floor + (self.ammonia0 - self.ammonia_floor) * math.exp(-days / 25.0))
            * (1.0 + loss)
            + _active(self.mods.ammonia, minute),
        ]
        values[AST] = values[ALT] * self.ast_ratio + 8.0
        if rng is not None and minute > self.t0:
            rnd = rng.random
            values = [
                v * (1.0 + cv * _Z[int(rnd() * _ZN)]) for v, cv in zip(values, _CV, strict=True)
            ]
        return values

    def _bleeding(self, minute: int) -> float:
        loss = 0.0
        for onset, drop in self.mods.haemoglobin:
            since = minute - onset
            if since < 6 * HOUR:
                continue
            if since <= 30 * HOUR:
                loss -= drop
            else:  # two units transfused, then slow regeneration
                loss -= (drop - 15.0) * math.exp(-(since - 30 * HOUR) / (20 * DAY))
        return loss

    def vitals(self, minute: int, rng: Random) -> tuple[float, int, int, int, int, int]:
        """Temperature, heart rate, respiratory rate, SBP, DBP and SpO2 at a minute."""
        rnd = rng.random
        mods = self.mods
        temperature = min(max(self.temperature0 + 0.2 * _Z[int(rnd() * _ZN)], 35.9), 37.4)
        for start, end, peak in mods.fever:
            if start <= minute <= end:
                taper = 37.2 + (peak - 37.2) * (1.0 - (minute - start) / max(end - start, 1))
                temperature = max(temperature, taper)
        fever = temperature - 37.0 if temperature > 37.0 else 0.0
        heart_rate = self.heart_rate0 + 5.0 * _Z[int(rnd() * _ZN)] + 10.0 * fever
        systolic = self.systolic0 + 7.0 * _Z[int(rnd() * _ZN)]
        if mods.heart_rate:
            heart_rate += _active(mods.heart_rate, minute)
        if mods.systolic_drop:
            systolic -= _active(mods.systolic_drop, minute)
        diastolic = min(self.diastolic0 + 5.0 * _Z[int(rnd() * _ZN)], systolic - 25)
        respiratory = self.respiratory_rate0 + 1.2 * _Z[int(rnd() * _ZN)] + 3.0 * fever
        spo2 = min(100, round(97.5 + _Z[int(rnd() * _ZN)] - (1.5 if fever > 1.0 else 0.0)))
        return (
            round(temperature, 1),
            round(heart_rate),
            round(respiratory),
            round(systolic),
            round(diastolic),
            spo2,
        )

    def west_haven(self, minute: int) -> int:
        """West Haven grade at a minute: the baseline, raised while an episode is active."""
        grade = self.west_haven0
        for start, end, episode_grade in self.mods.west_haven:
            if start <= minute <= end:
                # Worst during the first two days, one grade better afterwards.
                now = episode_grade if minute - start <= 2 * DAY else max(episode_grade - 1, 1)
                grade = max(grade, int(now))
        return grade

    def ascites(self, minute: int) -> str:
        """Ascites category: improves after two months, worsens in a dying participant."""
        days, _, loss = self._days(minute)
        level = self.ascites0 - (1 if days > 60 and not loss else 0)
        if loss > 0.3:
            level += 1
        return ASCITES[min(max(level, 0), 3)]
