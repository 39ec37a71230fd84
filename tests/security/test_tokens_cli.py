"""`safetymon tokens create|list|revoke` against a real token file."""

import json
from pathlib import Path

from typer.testing import CliRunner

from kit.auth import Role, TokenStore
from safetymon.cli import app

runner = CliRunner()


def _invoke(tokens: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["tokens", *args, "--tokens-file", str(tokens)])
    return result.exit_code, result.stdout


def test_create_prints_the_secret_once_and_it_authenticates(tmp_path):
    tokens = tmp_path / "tokens.json"

    code, out = _invoke(tokens, "create", "site-1-edc", "--role", "submitter", "--site", "site-1")

    created = json.loads(out)
    principal = TokenStore(tokens).authenticate(created["token"])
    assert code == 0
    assert principal is not None
    assert principal.name == "site-1-edc"
    assert (principal.role, principal.site) == (Role.submitter, "site-1")
    assert created["token"] not in tokens.read_text()


def test_list_shows_live_tokens_without_secrets_and_revoke_removes_them(tmp_path):
    tokens = tmp_path / "tokens.json"
    _, out = _invoke(tokens, "create", "aud-1", "--role", "auditor")
    created = json.loads(out)
    _invoke(tokens, "create", "dsmb-1", "--role", "dsmb")

    code, listed = _invoke(tokens, "list", "--json")
    revoke_code, _ = _invoke(tokens, "revoke", created["token_id"])
    _, after = _invoke(tokens, "list", "--json")

    assert code == 0
    assert [t["name"] for t in json.loads(listed)] == ["aud-1", "dsmb-1"]
    assert created["token"] not in listed
    assert revoke_code == 0
    assert [t["name"] for t in json.loads(after)] == ["dsmb-1"]
    assert TokenStore(tokens).authenticate(created["token"]) is None


def test_table_listing_names_each_token(tmp_path):
    tokens = tmp_path / "tokens.json"
    _invoke(tokens, "create", "aud-1", "--role", "auditor")

    code, out = _invoke(tokens, "list")

    assert code == 0
    assert "aud-1" in out
    assert "auditor" in out


def test_bad_requests_exit_non_zero_and_store_nothing(tmp_path):
    tokens = tmp_path / "tokens.json"

    no_site, _ = _invoke(tokens, "create", "edc", "--role", "submitter")
    bad_role, _ = _invoke(tokens, "create", "x", "--role", "superuser")
    unknown, _ = _invoke(tokens, "revoke", "0000")

    assert (no_site, bad_role, unknown) == (2, 2, 1)
    assert TokenStore(tokens).list() == []


def test_default_file_is_in_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("SAFETYMON_TOKENS_FILE", raising=False)
    monkeypatch.setenv("SAFETYMON_DATA_DIR", str(tmp_path))

    result = runner.invoke(app, ["tokens", "create", "aud-1", "--role", "auditor"])

    assert result.exit_code == 0
    assert [p.name for p in TokenStore(tmp_path / "tokens.json").list()] == ["aud-1"]
