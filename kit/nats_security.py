"""NATS credentials and TLS, one settings block every service's connection uses (adapter kit).

Environment (prefix SAFETYMON_): `NATS_USER` + `NATS_PASSWORD`, or `NATS_TOKEN`, or
`NATS_CREDS_FILE` (a JWT + nkey seed `.creds` file), or `NATS_NKEY_SEED_FILE`; and for TLS
`NATS_TLS_CA_FILE`, `NATS_TLS_CERT_FILE` + `NATS_TLS_KEY_FILE` (client certificate) and
`NATS_TLS_HOSTNAME`; `NATS_INBOX_PREFIX` where the server gives each user its own reply
subjects (the embedded one does: safetymon/nats_auth.py). Secrets are `SecretStr`: they never
appear in a repr or a log line. Keep credentials out of `SAFETYMON_NATS_URL`, which services
log.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from faststream.nats.security import (
    NatsCredentials,
    NatsNKey,
    NatsSecurity,
    NatsToken,
    NatsUserPassword,
    parse_security,
)
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class NatsClientSettings(BaseSettings):
    """How to authenticate to NATS and whether to use TLS; a base of each service's Settings."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_token: SecretStr | None = None
    nats_creds_file: Path | None = None
    nats_nkey_seed_file: Path | None = None
    nats_tls_ca_file: Path | None = None
    nats_tls_cert_file: Path | None = None
    nats_tls_key_file: Path | None = None
    nats_tls_hostname: str | None = None
    #: Reply subjects start with this instead of `_INBOX` (a per-user grant, not a secret).
    nats_inbox_prefix: str | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> NatsClientSettings:
        methods = [
            name
            for name, present in (
                ("NATS_USER/NATS_PASSWORD", self.nats_user is not None),
                ("NATS_TOKEN", self.nats_token is not None),
                ("NATS_CREDS_FILE", self.nats_creds_file is not None),
                ("NATS_NKEY_SEED_FILE", self.nats_nkey_seed_file is not None),
            )
            if present
        ]
        if len(methods) > 1:
            raise ValueError(f"give one NATS credential, not {' and '.join(methods)}")
        if (self.nats_user is None) != (self.nats_password is None):
            raise ValueError("NATS_USER and NATS_PASSWORD go together")
        if (self.nats_tls_cert_file is None) != (self.nats_tls_key_file is None):
            raise ValueError("NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together")
        return self

    def nats_security(self) -> NatsSecurity | None:
        """The faststream security object for `NatsBroker(..., security=...)`; None: none."""
        context, hostname = self._ssl_context(), self.nats_tls_hostname
        if self.nats_user is not None and self.nats_password is not None:
            password = self.nats_password.get_secret_value()
            return NatsUserPassword(
                self.nats_user, password, ssl_context=context, tls_hostname=hostname
            )
        if self.nats_token is not None:
            token = self.nats_token.get_secret_value()
            return NatsToken(token, ssl_context=context, tls_hostname=hostname)
        if self.nats_creds_file is not None:
            creds = self.nats_creds_file
            return NatsCredentials.from_file(creds, ssl_context=context, tls_hostname=hostname)
        if self.nats_nkey_seed_file is not None:
            seed = self.nats_nkey_seed_file
            return NatsNKey.from_file(seed, ssl_context=context, tls_hostname=hostname)
        if context is not None or hostname is not None:
            return NatsSecurity(ssl_context=context, tls_hostname=hostname)
        return None

    def nats_connect_options(self) -> dict[str, Any]:
        """The same settings as keyword arguments of `nats.connect` (for plain clients)."""
        # faststream's own translation, so the broker and plain clients can never disagree.
        options = {**parse_security(self.nats_security()), **self._inbox()}
        return {key: value for key, value in options.items() if value is not None}

    def nats_broker_options(self) -> dict[str, Any]:
        """Keyword arguments of `NatsBroker(url, ...)`: security and the inbox prefix."""
        return {"security": self.nats_security(), **self._inbox()}

    def _inbox(self) -> dict[str, str]:
        return {"inbox_prefix": self.nats_inbox_prefix} if self.nats_inbox_prefix else {}

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.nats_tls_ca_file is None and self.nats_tls_cert_file is None:
            return None
        context = ssl.create_default_context(
            cafile=str(self.nats_tls_ca_file) if self.nats_tls_ca_file else None
        )
        if self.nats_tls_cert_file is not None and self.nats_tls_key_file is not None:
            context.load_cert_chain(self.nats_tls_cert_file, self.nats_tls_key_file)
        return context
