"""The demo feed makes every rule category fire at least once, so a reviewer watching the demo
sees each kind of alert; checked through ingest's validation and the rules core."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.core.accept import Accepted, accept
from services.rules.core.fold import replay
from tools.demo import generate_feed

CATEGORIES = {
    "sae",
    "death",
    "susar",
    "stopping_rule",
    "hepatic_encephalopathy",
    "bleeding",
    "infection",
    "infusion_reaction",
    "plasma_exchange",
    "liver_progression",
    "aki",
    "laboratory",
}


@pytest.mark.slow
def test_a_small_demo_cohort_fires_every_rule_category() -> None:
    """Eight participants of the default seed: every category of the catalogue fires."""
    recorded_at = datetime(2026, 1, 1, tzinfo=UTC)
    accepted = [
        accept(item, recorded_at=recorded_at, actor="demo")
        for item in generate_feed(participants=8, now=recorded_at)
    ]
    facts = [a.fact for a in accepted if isinstance(a, Accepted)]

    _, signals = replay(facts)

    assert len(facts) == len(accepted)
    assert {s.payload.category for s in signals} == CATEGORIES
