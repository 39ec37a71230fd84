"""SAE-04: SUSAR candidate and its expedited reporting clock (ICH E2A)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import (
    AdverseEventReported,
    Causality,
    Expectedness,
    Outcome,
    Role,
    SeriousnessCriterion,
    SignalRaised,
)
from services.rules.core.fold import replay

from .factories import ae_reported, ae_updated, enrolled, unique

S = SeriousnessCriterion
AWARE = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def susar_signals(signals: tuple[SignalRaised, ...]) -> list[SignalRaised]:
    return [s for s in signals if s.payload.rule_id == "SAE-04"]


def susar(pid: str, **overrides: Any) -> AdverseEventReported:
    arguments = {
        "criteria": (S.HOSPITALISATION,),
        "relatedness": Causality.PROBABLE,
        "expectedness": Expectedness.UNEXPECTED,
        "awareness_at": AWARE,
    }
    return ae_reported(pid, **{**arguments, **overrides})


@pytest.mark.parametrize(
    "relatedness", [Causality.POSSIBLE, Causality.PROBABLE, Causality.DEFINITE]
)
def test_susar_when_serious_suspected_unexpected(relatedness: Causality) -> None:
    """SAE-04 fires for a serious, unexpected AE possibly/probably/definitely related to UC-MSC."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), susar(pid, relatedness=relatedness)])

    assert len(susar_signals(signals)) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"criteria": ()},
        {"relatedness": Causality.UNLIKELY},
        {"relatedness": Causality.NOT_RELATED},
        {"expectedness": Expectedness.EXPECTED},
        {"expectedness": Expectedness.UNKNOWN},
        {"criteria": (S.HOSPITALISATION,), "planned": True},
    ],
    ids=["not-serious", "unlikely", "not-related", "expected", "unknown-expectedness", "planned"],
)
def test_no_susar_when_a_criterion_is_missing(overrides: dict[str, Any]) -> None:
    """SAE-04 needs all three: serious, suspected (UC-MSC), unexpected."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), susar(pid, **overrides)])

    assert susar_signals(signals) == []


def test_non_fatal_susar_has_15_day_deadline() -> None:
    """A SUSAR that is neither fatal nor life-threatening is due 15 days after day 0."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), susar(pid)])

    payload = susar_signals(signals)[0].payload
    assert payload.reporting_deadline == AWARE + timedelta(days=15)
    assert payload.deadline_label == "SUSAR 15-day report"
    assert payload.values["due_followup"] is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"criteria": (S.LIFE_THREATENING,)},
        {"criteria": (S.HOSPITALISATION,), "outcome": Outcome.FATAL},
        {"criteria": (S.DEATH,), "grade": 5},
    ],
    ids=["life-threatening", "fatal-outcome", "death"],
)
def test_fatal_or_life_threatening_susar_has_7_day_deadline(overrides: dict[str, Any]) -> None:
    """A fatal or life-threatening SUSAR is due in 7 days, with the follow-up due on day 15."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), susar(pid, **overrides)])

    payload = susar_signals(signals)[0].payload
    assert payload.reporting_deadline == AWARE + timedelta(days=7)
    assert payload.deadline_label == "SUSAR 7-day report"
    assert payload.values["due_followup"] == (AWARE + timedelta(days=15)).isoformat()


def test_susar_routing() -> None:
    """SAE-04 is U0 to safety officer, investigator and DSMB chair."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), susar(pid)])

    assert susar_signals(signals)[0].payload.recipients == (
        Role.SAFETY_OFFICER,
        Role.INVESTIGATOR,
        Role.DSMB_CHAIR,
    )


def test_susar_fires_once_when_update_makes_it_suspected() -> None:
    """SAE-04 fires on the update that completes the criteria, and only once per AE."""
    pid = unique("P")
    first = susar(pid, relatedness=Causality.UNLIKELY)
    update = ae_updated(
        pid,
        criteria=(S.HOSPITALISATION,),
        relatedness=Causality.POSSIBLE,
        expectedness=Expectedness.UNEXPECTED,
        awareness_at=AWARE,
    )
    again = ae_updated(
        pid,
        criteria=(S.LIFE_THREATENING,),
        relatedness=Causality.DEFINITE,
        expectedness=Expectedness.UNEXPECTED,
        awareness_at=AWARE,
    )

    _, signals = replay([enrolled(pid), first, update, again])

    assert [s.causation_id for s in susar_signals(signals)] == [update.event_id]


def test_day0_falls_back_to_recorded_at() -> None:
    """Without an awareness time, day 0 is when safetymon learned of the AE."""
    pid = unique("P")
    fact = susar(pid, awareness_at=None)

    _, signals = replay([enrolled(pid), fact])

    assert susar_signals(signals)[0].payload.reporting_deadline == fact.recorded_at + timedelta(
        days=15
    )
