"""Token store and bearer dependency of kit/auth.py."""

import json
import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Annotated

import pytest
import structlog.testing
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from kit.auth import (
    AuthSettings,
    Principal,
    Role,
    TokenStore,
    TokenStoreError,
    UnknownTokenError,
    bearer_dependency,
)

BOOTSTRAP = "bootstrap-secret-for-unit-tests"


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "tokens.json")


class TestTokenStore:
    def test_create_returns_a_secret_that_authenticates_as_the_principal(self, store):
        principal, secret = store.create("site-1-edc", Role.submitter, site="site-1")

        assert store.authenticate(secret) == principal
        assert principal == Principal(principal.token_id, "site-1-edc", Role.submitter, "site-1")
        assert principal.actor == "token:site-1-edc"

    def test_secret_is_stored_only_as_its_hash(self, store):
        _, secret = store.create("auditor-1", Role.auditor)

        text = store.path.read_text()

        assert secret not in text
        assert secret.removeprefix("smt_") not in text
        assert len(json.loads(text)["tokens"][0]["sha256"]) == 64

    def test_secrets_are_distinct_and_high_entropy(self, store):
        secrets_ = {store.create(f"t{i}", Role.dsmb)[1] for i in range(20)}

        assert len(secrets_) == 20
        assert all(len(s) >= 40 for s in secrets_)

    def test_unknown_secret_is_refused(self, store):
        store.create("auditor-1", Role.auditor)

        assert store.authenticate("smt_not-a-token") is None
        assert store.authenticate("") is None

    def test_revoked_token_is_refused_and_unlisted(self, store):
        kept, _ = store.create("kept", Role.dsmb)
        gone, secret = store.create("gone", Role.dsmb)

        store.revoke(gone.token_id)

        assert store.authenticate(secret) is None
        assert store.list() == [kept]

    def test_revoking_twice_is_a_no_op_and_an_unknown_id_is_an_error(self, store):
        gone, _ = store.create("gone", Role.dsmb)
        store.revoke(gone.token_id)

        store.revoke(gone.token_id)

        with pytest.raises(UnknownTokenError, match="no token has id 'nope'"):
            store.revoke("nope")

    def test_a_name_is_never_reused_even_after_revocation(self, store):
        first, _ = store.create("site-1-edc", Role.submitter, site="site-1")
        store.revoke(first.token_id)

        with pytest.raises(TokenStoreError, match="exists or existed"):
            store.create("site-1-edc", Role.submitter, site="site-1")

    @pytest.mark.parametrize(
        ("name", "role", "site", "message"),
        [
            ("Jane Doe", Role.dsmb, None, "never a person's name"),
            ("", Role.dsmb, None, "is a code"),
            ("bootstrap", Role.admin, None, "exists or existed"),
            ("edc", Role.submitter, None, "is per site"),
            ("inv", Role.investigator, None, "is per site"),
            ("so", Role.safety_officer, "site-1", "is not per site"),
            ("edc", Role.submitter, "site 1\r\n", "site is a code"),
        ],
    )
    def test_invalid_tokens_are_refused_with_a_specific_error(
        self, store, name, role, site, message
    ):
        with pytest.raises(TokenStoreError, match=message):
            store.create(name, role, site=site)

        assert store.list() == []

    def test_a_missing_file_means_no_tokens(self, tmp_path):
        store = TokenStore(tmp_path / "absent" / "tokens.json")

        assert store.list() == []
        assert store.authenticate("smt_anything") is None

    def test_a_second_process_sees_creations_and_revocations(self, store):
        reader = TokenStore(store.path)
        assert reader.list() == []
        principal, secret = store.create("edc", Role.submitter, site="site-1")

        assert reader.authenticate(secret) == principal

        store.revoke(principal.token_id)

        assert reader.authenticate(secret) is None

    @pytest.mark.slow
    def test_concurrent_writers_lose_no_token(self, store):
        # spawn, not fork: by this point of a full run the test process has threads (DuckDB
        # writers, event loops) and a child forked while one holds a lock can hang forever.
        # The barrier lets the four start writing together once each has imported.
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(4)
        writers = [
            ctx.Process(target=_create_many, args=(store.path, f"w{w}", start)) for w in range(4)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(60)

        assert [writer.exitcode for writer in writers] == [0, 0, 0, 0]
        assert len(store.list()) == 4 * 10

    def test_a_corrupt_file_is_an_error_not_an_empty_store(self, store):
        store.path.write_text("{not json")

        with pytest.raises(TokenStoreError, match="unreadable token file"):
            store.authenticate("smt_x")

    def test_the_file_is_private_to_its_owner(self, store):
        store.create("edc", Role.submitter, site="site-1")

        assert store.path.stat().st_mode & 0o077 == 0

    def test_bootstrap_secret_is_an_admin(self, tmp_path):
        store = TokenStore(tmp_path / "tokens.json", bootstrap_secret=BOOTSTRAP)

        principal = store.authenticate(BOOTSTRAP)

        assert principal is not None
        assert (principal.role, principal.site, principal.actor) == (
            Role.admin,
            None,
            "token:bootstrap",
        )
        assert store.authenticate(BOOTSTRAP[:-1]) is None

    def test_a_short_bootstrap_secret_is_refused(self, tmp_path):
        with pytest.raises(TokenStoreError, match="at least 16"):
            TokenStore(tmp_path / "tokens.json", bootstrap_secret="short")  # noqa: S106 -- a test value


class TestAuthSettings:
    def test_defaults_to_the_data_directory_and_no_bootstrap(self, monkeypatch, tmp_path):
        monkeypatch.delenv("SAFETYMON_BOOTSTRAP_TOKEN", raising=False)
        monkeypatch.delenv("SAFETYMON_TOKENS_FILE", raising=False)
        monkeypatch.setenv("SAFETYMON_DATA_DIR", str(tmp_path))

        settings = AuthSettings()

        assert settings.tokens_path == tmp_path / "tokens.json"
        assert settings.store().authenticate(BOOTSTRAP) is None

    def test_bootstrap_token_comes_from_the_environment_and_is_not_shown(self, monkeypatch):
        monkeypatch.setenv("SAFETYMON_BOOTSTRAP_TOKEN", BOOTSTRAP)

        settings = AuthSettings()

        assert BOOTSTRAP not in repr(settings)
        assert settings.store().authenticate(BOOTSTRAP) is not None


def _create_many(path: Path, prefix: str, start: Barrier) -> None:
    store = TokenStore(path)
    start.wait(60)
    for i in range(10):
        store.create(f"{prefix}-{i}", Role.dsmb)


def _app(store: TokenStore) -> TestClient:
    api = FastAPI()
    auditors = bearer_dependency(store, Role.auditor)

    @api.get("/audit")
    def audit(principal: Annotated[Principal, Depends(auditors)]) -> dict[str, str]:
        return {"actor": principal.actor}

    return TestClient(api)


class TestBearerDependency:
    def test_missing_credential_is_401_with_a_challenge(self, store):
        response = _app(store).get("/audit")

        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="safetymon"'

    @pytest.mark.parametrize(
        "header", ["Bearer smt_wrong", "Basic dXNlcjpwYXNz", "Bearer", "smt_wrong"]
    )
    def test_invalid_credential_is_401(self, store, header):
        response = _app(store).get("/audit", headers={"Authorization": header})

        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")

    def test_revoked_token_is_401(self, store):
        principal, secret = store.create("aud", Role.auditor)
        store.revoke(principal.token_id)

        response = _app(store).get("/audit", headers={"Authorization": f"Bearer {secret}"})

        assert response.status_code == 401

    def test_allowed_role_gets_its_principal(self, store):
        _, secret = store.create("aud", Role.auditor)

        response = _app(store).get("/audit", headers={"Authorization": f"Bearer {secret}"})

        assert (response.status_code, response.json()) == (200, {"actor": "token:aud"})

    def test_admin_may_do_everything(self, store):
        _, secret = store.create("root", Role.admin)

        response = _app(store).get("/audit", headers={"Authorization": f"Bearer {secret}"})

        assert response.status_code == 200

    @pytest.mark.parametrize(
        ("role", "site"),
        [
            (Role.submitter, "site-1"),
            (Role.investigator, "site-1"),
            (Role.safety_officer, None),
            (Role.dsmb, None),
        ],
    )
    def test_other_roles_are_403(self, store, role, site):
        _, secret = store.create("someone", role, site=site)

        response = _app(store).get("/audit", headers={"Authorization": f"Bearer {secret}"})

        assert response.status_code == 403
        assert "needs admin or auditor" in response.json()["detail"]

    def test_unreadable_store_is_503_not_a_crash(self, store):
        store.path.write_text("[]")

        response = _app(store).get("/audit", headers={"Authorization": "Bearer smt_x"})

        assert response.status_code == 503


class TestRefusalsAreLogged:
    def test_refusals_name_the_path_and_actor_but_never_the_secret(self, store):
        _, secret = store.create("dsmb-1", Role.dsmb)
        client = _app(store)

        with structlog.testing.capture_logs() as logs:
            client.get("/audit")
            client.get("/audit", headers={"Authorization": "Bearer smt_guessed-secret"})
            client.get("/audit", headers={"Authorization": f"Bearer {secret}"})

        assert [(e["event"], e.get("reason")) for e in logs] == [
            ("http_auth_refused", "no bearer token"),
            ("http_auth_refused", "unknown or revoked token"),
            ("http_role_forbidden", None),
        ]
        assert logs[2]["actor"] == "token:dsmb-1"
        assert all(e["path"] == "/audit" for e in logs)
        assert "smt_" not in repr(logs)
