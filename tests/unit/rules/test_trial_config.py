"""Trial configuration: RULES.md [DC] defaults as data, a versioned TOML file, on every signal."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.rules import app
from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG, load_trial_config
from services.rules.config import Settings
from services.rules.core.config import DEFAULT_CONFIG, TrialConfig
from services.rules.core.errors import ConfigurationError
from services.rules.core.fold import replay
from services.rules.main import build_app

from .factories import T0, ae_reported, enrolled, lab_result, unique, vitals


def test_packaged_file_is_versioned_and_equals_the_rules_md_defaults() -> None:
    """The trial file NCT01724398.v1.toml states exactly the RULES.md defaults, version v1."""
    config = load_trial_config()

    assert DEFAULT_TRIAL_CONFIG.name == "NCT01724398.v1.toml"
    assert config == DEFAULT_CONFIG
    assert (config.trial_id, config.version) == ("NCT01724398", "NCT01724398.v1")


def test_defaults_match_rules_md() -> None:
    """Spot-check [DC] defaults against RULES.md §2-§4 (windows, Hb drops, fever, rebleed)."""
    c = DEFAULT_CONFIG

    assert (c.procedures.ir_msc_hours, c.procedures.ir_pe_hours) == (24.0, 6.0)
    assert (c.procedures.inf_msc_days, c.procedures.inf_pe_hours) == (7.0, 72.0)
    assert (c.he.new_onset_lookback_days, c.he.worsening_window_hours) == (14.0, 72.0)
    assert (c.bleeding.hb_major_drop_g_l, c.bleeding.hb_minor_drop_g_l, c.bleeding.hb_low_g_l) == (
        30.0,
        20.0,
        70.0,
    )
    assert (c.bleeding.rebleed_window_days, c.infection.fever_c, c.infection.fever_high_c) == (
        42.0,
        38.0,
        40.0,
    )
    assert c.infection.sirs_window_hours == 24.0


def test_every_signal_records_the_config_version() -> None:
    """Each signal, SAE family included, carries values.config_version."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, term="Melaena", criteria=("hospitalisation",)),
        vitals(pid, temperature=39.0, env={"at": T0}),
    ]

    _, signals = replay(facts)

    assert {s.payload.values["config_version"] for s in signals} == {"NCT01724398.v1"}
    assert len(signals) == 3


def test_a_changed_threshold_applies_and_its_version_is_recorded(tmp_path: Path) -> None:
    """A v2 file lowering VB-04 to Hb < 80 g/L fires at 75 g/L and says config v2."""
    path = tmp_path / "NCT01724398.v2.toml"
    path.write_text(
        '[trial]\nid = "NCT01724398"\nconfig_version = "NCT01724398.v2"\n'
        "[bleeding]\nhb_low_g_l = 80\n"
    )
    config = load_trial_config(path)
    pid = unique("P")

    _, signals = replay([enrolled(pid), lab_result(pid, "hb", 75.0, at=T0)], config)

    assert config == replace(
        DEFAULT_CONFIG,
        version="NCT01724398.v2",
        bleeding=replace(DEFAULT_CONFIG.bleeding, hb_low_g_l=80.0),
    )
    assert [
        (s.payload.rule_id, s.payload.values["config_version"])
        for s in signals
        if s.payload.rule_id == "VB-04"  # Hb 75 g/L is also CTCAE anaemia grade 3 (LAB-*)
    ] == [("VB-04", "NCT01724398.v2")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[trial]\nid = "X"\nconfig_version = "X.v1"\n[bleeding]\nhb_lowest = 80\n',
            "unknown keys",
        ),
        (
            '[trial]\nid = "X"\nconfig_version = "X.v1"\n[bleeding]\nhb_low_g_l = "80"\n',
            "expected a number",
        ),
        (
            '[trial]\nid = "X"\nconfig_version = "X.v1"\n[alerting]\ndefer_ae_pages_to_sae01 = 1\n',
            "boolean",
        ),
        ('[trial]\nid = "X"\nconfig_version = "X.v1"\n[he]\nsodium_low_mmol_l = -1\n', "negative"),
        ('[trial]\nid = "X"\n', "config_version"),
        ('[trial]\nid = "X"\nconfig_version = "X.v1"\n[renal]\nx = 1\n', "unknown config sections"),
        ("not toml = = 1", "not valid TOML"),
    ],
)
def test_invalid_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    """Unknown keys, wrong types, negative numbers and bad TOML stop the service at start-up."""
    path = tmp_path / "bad.toml"
    path.write_text(text)

    with pytest.raises(ConfigurationError, match=message):
        load_trial_config(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    """A configured file that does not exist is a configuration error, not silent defaults."""
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_trial_config(tmp_path / "absent.toml")


def test_config_is_frozen_data() -> None:
    """TrialConfig is an immutable value the engine passes to rules (no global state)."""
    with pytest.raises(AttributeError):
        DEFAULT_CONFIG.version = "changed"  # type: ignore[misc]
    assert isinstance(hash(DEFAULT_CONFIG), int)
    assert TrialConfig() == DEFAULT_CONFIG


async def test_use_case_applies_the_configuration_it_is_given() -> None:
    """handle_batch evaluates with the configuration the service loaded (not the defaults)."""
    store = InMemoryRulesStore()
    pid = unique("P")
    config = replace(
        DEFAULT_CONFIG,
        version="NCT01724398.test",
        bleeding=replace(DEFAULT_CONFIG.bleeding, hb_low_g_l=80.0),
    )

    signals = await app.handle_batch(
        [enrolled(pid), lab_result(pid, "hb", 75.0, at=T0)],
        consumer="rules-evaluator",
        store=store,
        config=config,
    )

    assert [
        (s.payload.rule_id, s.payload.values["config_version"])
        for s in signals
        if s.payload.rule_id == "VB-04"  # Hb 75 g/L is also CTCAE anaemia grade 3 (LAB-*)
    ] == [("VB-04", "NCT01724398.test")]


def test_service_loads_the_file_named_in_settings(tmp_path: Path) -> None:
    """SAFETYMON_TRIAL_CONFIG (Settings.trial_config) chooses the file; a bad one stops start-up."""
    good = tmp_path / "NCT01724398.v2.toml"
    good.write_text('[trial]\nid = "NCT01724398"\nconfig_version = "NCT01724398.v2"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("[bleeding]\nhb_low_g_l = 80\n")

    service = build_app(Settings(data_dir=tmp_path, trial_config=good))

    assert service.trial_config.version == "NCT01724398.v2"
    assert build_app(Settings(data_dir=tmp_path)).trial_config == DEFAULT_CONFIG
    with pytest.raises(ConfigurationError):
        build_app(Settings(data_dir=tmp_path, trial_config=bad))


def test_wheel_without_data_files_falls_back_to_the_identical_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No file configured and the packaged file absent -> built-in defaults (equal to v1)."""
    from services.rules.adapters import trial_config

    monkeypatch.setattr(trial_config, "DEFAULT_TRIAL_CONFIG", tmp_path / "absent.toml")

    assert trial_config.load_trial_config() == DEFAULT_CONFIG


def test_liver_aki_and_sae05_defaults_match_rules_md() -> None:
    """RULES.md §5.3/§6/§1 [DC]: MELD >= 30, rise >= 5 over 14 d, inputs 48 h, SAE-05 24 h."""
    c = DEFAULT_CONFIG

    assert (c.liver.meld_alert, c.liver.meld_rise, c.liver.meld_lowest_lookback_days) == (
        30.0,
        5.0,
        14.0,
    )
    assert (c.liver.meld_inputs_within_hours, c.liver.of_bilirubin_umol_l) == (48.0, 205.2)
    assert (c.liver.of_creatinine_umol_l, c.liver.of_inr) == (176.8, 2.5)
    assert (c.aki.baseline_window_days, c.sae.sae_within_hours) == (7.0, 24.0)
