"""The shared NATS credential and TLS settings (kit/nats_security.py)."""

import pytest
from faststream.nats.security import NatsNKey, NatsToken, NatsUserPassword
from pydantic import ValidationError

from kit.nats_security import NatsClientSettings

PASSWORD = "not-a-real-password-0123"  # noqa: S105 -- a test value, not a credential


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch):
    for key in ("USER", "PASSWORD", "TOKEN", "CREDS_FILE", "NKEY_SEED_FILE", "TLS_CA_FILE"):
        monkeypatch.delenv(f"SAFETYMON_NATS_{key}", raising=False)


def test_no_settings_means_no_security():
    assert NatsClientSettings().nats_security() is None
    assert NatsClientSettings().nats_connect_options() == {}


def test_user_and_password_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SAFETYMON_NATS_USER", "svc")
    monkeypatch.setenv("SAFETYMON_NATS_PASSWORD", PASSWORD)

    settings = NatsClientSettings()

    assert isinstance(settings.nats_security(), NatsUserPassword)
    assert settings.nats_connect_options() == {
        "user": "svc",
        "password": PASSWORD,
        "tls_handshake_first": False,
    }
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.model_dump())


def test_a_token_is_a_secret_too():
    settings = NatsClientSettings(nats_token=PASSWORD)

    assert isinstance(settings.nats_security(), NatsToken)
    assert settings.nats_connect_options()["token"] == PASSWORD
    assert PASSWORD not in repr(settings)


def test_an_nkey_seed_file_is_passed_as_a_file(tmp_path):
    seed = tmp_path / "svc.nk"

    options = NatsClientSettings(nats_nkey_seed_file=seed).nats_connect_options()

    assert isinstance(NatsClientSettings(nats_nkey_seed_file=seed).nats_security(), NatsNKey)
    assert options["nkeys_seed"] == str(seed)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"nats_user": "svc", "nats_password": PASSWORD, "nats_token": "t"}, "one NATS credential"),
        ({"nats_token": "t", "nats_creds_file": "x.creds"}, "one NATS credential"),
        ({"nats_user": "svc"}, "go together"),
        ({"nats_password": PASSWORD}, "go together"),
        ({"nats_tls_cert_file": "c.pem"}, "go together"),
    ],
)
def test_contradictory_settings_are_refused_with_a_reason(fields, message):
    with pytest.raises(ValidationError, match=message):
        NatsClientSettings(**fields)


def test_every_service_settings_share_the_block():
    from services.ingest.config import Settings as Ingest
    from services.notify.config import Settings as Notify
    from services.rules.config import Settings as Rules

    assert all(issubclass(s, NatsClientSettings) for s in (Ingest, Rules, Notify))
