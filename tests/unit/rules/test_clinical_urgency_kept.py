"""A rule's signal says its clinical urgency and recipients, whatever else fires on the fact.

When the report that makes an AE serious also fires an AE-route rule at U0, SAE-01 and that
rule both page investigator and safety officer at U0: one page per person is notify's
delivery decision (services/notify/core/pages.py), not a rewrite of the rule's urgency.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from schemas import Arm, Role, SeriousnessCriterion, Treatment, Urgency
from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG, load_trial_source
from services.rules.core.config import DEFAULT_CONFIG, TrialConfig
from services.rules.core.fold import replay

from .factories import T0, ae_reported, enrolled, fired, hours_after, procedure, unique

INV_SO = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
HOSPITALISED = (SeriousnessCriterion.HOSPITALISATION,)


def test_a_serious_bleed_keeps_vb01_at_u0_beside_sae01() -> None:
    pid = unique("P")
    report = ae_reported(pid, term="Oesophageal varices haemorrhage", criteria=HOSPITALISED)

    _, signals = replay([enrolled(pid), report])

    sae, bleed = fired(signals, "SAE-01"), fired(signals, "VB-01")
    assert [(s.payload.urgency, s.payload.recipients) for s in sae] == [(Urgency.U0, INV_SO)]
    assert [(s.payload.urgency, s.payload.recipients) for s in bleed] == [(Urgency.U0, INV_SO)]
    assert "paged_via" not in bleed[0].payload.values
    assert "clinical_urgency" not in bleed[0].payload.values
    # Both name the same causing fact: what notify pages once per person.
    assert sae[0].causation_id == bleed[0].causation_id == report.event_id


def test_a_serious_infusion_anaphylaxis_keeps_ir_msc01_at_u0_beside_sae01() -> None:
    pid = unique("P")
    report = ae_reported(
        pid, term="Anaphylaxis", grade=3, criteria=HOSPITALISED, env={"at": hours_after(1)}
    )
    facts = [
        enrolled(pid, arm=Arm.UC_MSC_AND_PLASMA_EXCHANGE, at=T0 - timedelta(days=2)),
        procedure(pid, Treatment.UC_MSC_INFUSION, at=T0),
        report,
    ]

    _, signals = replay(facts)

    assert [s.payload.urgency for s in fired(signals, "SAE-01")] == [Urgency.U0]
    reaction = fired(signals, "IR-MSC-01")
    assert [(s.payload.urgency, s.payload.recipients) for s in reaction] == [(Urgency.U0, INV_SO)]
    assert reaction[0].causation_id == report.event_id


@pytest.mark.parametrize("flag", ["true", "false"])
def test_released_configs_that_set_the_retired_deferral_flag_still_load(
    tmp_path: Path, flag: str
) -> None:
    """`defer_ae_pages_to_sae01` is accepted and ignored: old files replay unchanged."""
    text = DEFAULT_TRIAL_CONFIG.read_text(encoding="utf-8")
    assert "defer_ae_pages_to_sae01 = true" in text
    path = tmp_path / "old.toml"
    path.write_text(
        text.replace("defer_ae_pages_to_sae01 = true", f"defer_ae_pages_to_sae01 = {flag}")
    )

    config, _ = load_trial_source(path)

    assert config.alerting == DEFAULT_CONFIG.alerting
    assert isinstance(config, TrialConfig)
