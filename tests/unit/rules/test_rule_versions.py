"""Rule versions side by side: v1 stays runnable, the config picks, signals say."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG, load_trial_config
from services.rules.core.config import TrialConfig
from services.rules.core.engine import VERSIONS, rules_for
from services.rules.core.errors import ConfigurationError
from services.rules.core.fold import replay

from .factories import T0, ae_reported, enrolled, fired, hours_after, lab_result, unique

V2_FILE = DEFAULT_TRIAL_CONFIG.with_name("NCT01724398.v2.toml")


def _bleed_then_hb75(pid: str) -> list[object]:
    """A variceal bleed, then Hb 75 g/L 12 h later (below 80, above 70)."""
    return [
        enrolled(pid, at=T0),
        ae_reported(pid, term="Oesophageal varices haemorrhage", env={"at": hours_after(1)}),
        lab_result(pid, "hb", 75.0, at=hours_after(13)),
    ]


def test_v1_and_v2_of_vb04_both_run_on_the_same_history() -> None:
    """VB-04 v1 (Hb < 70) is silent at 75 g/L; v2 (< 80 within 72 h of a bleed) fires."""
    pid = unique("P")
    v1 = load_trial_config()
    v2 = load_trial_config(V2_FILE)

    _, with_v1 = replay(_bleed_then_hb75(pid), v1)
    _, with_v2 = replay(_bleed_then_hb75(pid), v2)

    assert fired(with_v1, "VB-04") == []
    (signal,) = fired(with_v2, "VB-04")
    assert signal.payload.rule_version == 2
    assert signal.payload.values["config_version"] == "NCT01724398.v2"
    assert signal.payload.values["threshold_g_l"] == 80.0


def test_without_a_bleed_v2_keeps_the_v1_threshold_and_each_signal_names_its_version() -> None:
    """Hb 65 g/L with no bleed: both versions fire, each signal recording its rule version."""
    pid = unique("P")
    history = [enrolled(pid, at=T0), lab_result(pid, "hb", 65.0, at=hours_after(2))]

    _, with_v1 = replay(history, load_trial_config())
    _, with_v2 = replay(history, load_trial_config(V2_FILE))

    assert [s.payload.rule_version for s in fired(with_v1, "VB-04")] == [1]
    assert [s.payload.rule_version for s in fired(with_v2, "VB-04")] == [2]


def test_the_config_chooses_the_live_version_among_its_rules() -> None:
    """rules_for(config) holds exactly one VB-04, of the chosen version; v1 is the default."""
    default = {r.rule_id: r.rule_version for r in rules_for(TrialConfig())}
    chosen = {r.rule_id: r.rule_version for r in rules_for(load_trial_config(V2_FILE))}

    assert default["VB-04"] == 1
    assert chosen["VB-04"] == 2
    assert sorted(VERSIONS["VB-04"]) == [1, 2]


def test_unknown_rule_or_version_in_the_config_stops_the_service(tmp_path: Path) -> None:
    """A [rule_versions] entry naming a rule or version that does not exist is refused."""
    base = '[trial]\nid = "NCT01724398"\nconfig_version = "x.v9"\n[rule_versions]\n'
    for entry, message in (('"VB-04" = 7', "no version 7"), ('"XX-99" = 2', "unknown rules")):
        path = tmp_path / "bad.toml"
        path.write_text(base + entry + "\n")

        with pytest.raises(ConfigurationError, match=message):
            load_trial_config(path)


def test_a_version_must_be_a_positive_integer(tmp_path: Path) -> None:
    """`"VB-04" = "2"` is a clear error, not a silent v1."""
    path = tmp_path / "bad.toml"
    path.write_text('[trial]\nid = "T"\nconfig_version = "T.v1"\n[rule_versions]\n"VB-04" = "2"\n')

    with pytest.raises(ConfigurationError, match=r"rule_versions\.VB-04"):
        load_trial_config(path)
