"""The trial configuration's identity: exact text and sha256, recorded when it takes effect."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

from services.rules.adapters import trial_config
from services.rules.adapters.trial_config import (
    DEFAULT_TOML,
    DEFAULT_TRIAL_CONFIG,
    load_trial_config,
    load_trial_source,
)
from services.rules.core.config import DEFAULT_CONFIG, TrialConfig
from services.rules.core.errors import ConfigurationError


def test_the_identity_is_the_loaded_files_exact_text_and_its_sha256() -> None:
    """An auditor can check the recorded text against its digest and the released file."""
    v2 = DEFAULT_TRIAL_CONFIG.with_name("NCT01724398.v2.toml")

    config, identity = load_trial_source(v2)

    assert identity.toml.encode() == v2.read_bytes()
    assert identity.sha256 == hashlib.sha256(v2.read_bytes()).hexdigest()
    assert (identity.version, identity.rule_versions) == ("NCT01724398.v2", (("VB-04", 2),))
    assert config == load_trial_config(v2)


def test_line_endings_are_kept_as_the_file_has_them(tmp_path: Path) -> None:
    """The digest is over the file's bytes: a CRLF copy is another file."""
    crlf = tmp_path / "crlf.toml"
    crlf.write_bytes(DEFAULT_TRIAL_CONFIG.read_bytes().replace(b"\n", b"\r\n"))

    config, identity = load_trial_source(crlf)

    assert identity.sha256 == hashlib.sha256(crlf.read_bytes()).hexdigest()
    assert "\r\n" in identity.toml
    assert config == DEFAULT_CONFIG


def test_a_file_that_is_not_utf8_stops_the_service(tmp_path: Path) -> None:
    """TOML is UTF-8; anything else is refused at start-up."""
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[trial]\nid = "\xe9"\n')

    with pytest.raises(ConfigurationError, match="not UTF-8"):
        load_trial_source(bad)


def test_the_built_in_defaults_are_recorded_as_a_toml_that_reads_back_as_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the packaged file the recorded text still rebuilds the running configuration."""
    monkeypatch.setattr(trial_config, "DEFAULT_TRIAL_CONFIG", tmp_path / "missing.toml")

    config, identity = load_trial_source()

    assert config == DEFAULT_CONFIG
    assert identity.toml == DEFAULT_TOML
    assert TrialConfig.from_mapping(tomllib.loads(identity.toml)) == DEFAULT_CONFIG
    assert identity.sha256 == hashlib.sha256(DEFAULT_TOML.encode()).hexdigest()
