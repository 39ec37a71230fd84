"""Late facts still fire, and every signal says whether its fact was late."""

from __future__ import annotations

from schemas import SeriousnessCriterion
from services.rules.core.config import AlertingConfig, TrialConfig
from services.rules.core.fold import replay

from .factories import ae_reported, enrolled, hours_after, lab_result, unique

HOSPITALISED = (SeriousnessCriterion.HOSPITALISATION,)


def test_sae_recorded_three_days_late_still_fires_and_says_late() -> None:
    """SAE-01 on an AE recorded 72 h after onset fires, with `late` and the delay in hours."""
    pid = unique("P")
    report = ae_reported(pid, criteria=HOSPITALISED, env={"recorded_at": hours_after(72)})

    _, signals = replay([enrolled(pid), report])

    (sae01,) = signals
    assert sae01.payload.values["late"] is True
    assert sae01.payload.values["delay_hours"] == 72.0


def test_sae_recorded_within_the_threshold_is_not_late() -> None:
    """An AE recorded 24 h after onset (the closed threshold) is not late."""
    pid = unique("P")
    report = ae_reported(pid, criteria=HOSPITALISED, env={"recorded_at": hours_after(24)})

    _, signals = replay([enrolled(pid), report])

    assert signals[0].payload.values["late"] is False


def test_late_threshold_is_configuration() -> None:
    """`alerting.late_after_hours` [DC] decides lateness: 2 h makes a 5 h-late result late."""
    pid = unique("P")
    low = lab_result(pid, "hb", 65.0, at=hours_after(1), recorded_at=hours_after(6))
    config = TrialConfig(alerting=AlertingConfig(late_after_hours=2.0))

    _, default_signals = replay([enrolled(pid), low])
    _, strict_signals = replay([enrolled(pid), low], config)

    # Hb 65 g/L: VB-04, and CTCAE anaemia grade 3 (LAB-G3, LAB-SHIFT) without a range.
    assert {s.payload.values["late"] for s in default_signals} == {False}
    assert {s.payload.values["late"] for s in strict_signals} == {True}
    assert len(strict_signals) == len(default_signals) == 3
