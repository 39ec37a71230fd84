"""Settings of the notify service (environment prefix SAFETYMON_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from kit.nats_security import NatsClientSettings
from services.notify.core.ack import MIN_KEY_BYTES


class Settings(NatsClientSettings):  # NATS credentials and TLS: kit/nats_security.py
    """Runtime settings; built only in main.py or by the runner, passed on as plain values."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    data_dir: Path = Path("data")
    nats_url: str = "nats://127.0.0.1:4222"
    namespace: str = "safetymon"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_validate_certs: bool = True
    #: CA bundle (PEM) to verify the SMTP server's certificate, e.g. a private CA.
    smtp_cert_bundle: Path | None = None
    smtp_timeout: float = Field(default=10.0, gt=0)
    mail_from: str = "safetymon@localhost"
    routing: Path = Path("routing.toml")
    #: Deadlines are shown in UTC and in this zone (RULES.md §0.2: displayed Asia/Shanghai).
    display_timezone: str = "Asia/Shanghai"
    #: Backoff of temporary delivery failures: first retry after ~base, capped at cap.
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_cap_seconds: float = Field(default=60.0, gt=0)
    #: Messages sent over one SMTP connection before the outbox is read again.
    send_burst: int = Field(default=100, ge=1)
    #: Signals taken from JetStream per batch (one DuckDB transaction each).
    max_batch: int = Field(default=200, ge=1)
    log_format: Literal["json", "console", "auto"] = "auto"
    #: HTTP endpoint of notify (acknowledgement links, delivery log). 0 picks a free port so
    #: several stacks on one machine never collide; set a fixed one (and the public URL) in a
    #: deployment so links in old emails keep working after a restart. The CLI uses NATS.
    notify_http_host: str = "127.0.0.1"
    notify_http_port: int = Field(default=0, ge=0, le=65535)
    #: Base URL put into acknowledgement links; default http://<host>:<bound port>.
    notify_public_url: str | None = None
    #: HMAC key of acknowledgement links; generated into <data_dir>/ack.secret when unset.
    #: At least 32 bytes (UTF-8, used as given, never decoded); shorter ones stop the start.
    ack_secret: SecretStr | None = None
    #: How long an acknowledgement link stays valid.
    ack_ttl_hours: float = Field(default=72.0, gt=0)
    #: RULES.md §0.3: an unacknowledged U0 escalates after this (then the DSMB chair at 2x).
    escalation_minutes: float = Field(default=60.0, gt=0)
    #: U2 daily digest at this local hour (display_timezone); RULES.md §0.3: 08:00.
    digest_hour: int = Field(default=8, ge=0, le=23)
    #: Weekday of the DSMB (U3) digest, 0 = Monday, at the same hour.
    dsmb_digest_weekday: int = Field(default=0, ge=0, le=6)
    #: How often open U0 alerts are checked for a due escalation.
    escalation_tick_seconds: float = Field(default=15.0, gt=0)
    #: The bearer-token file written by `safetymon tokens` (default: tokens.json in data_dir);
    #: every HTTP route but /health and the signed acknowledgement link needs a token.
    tokens_file: Path | None = None
    #: Accepted as an admin credential besides the token file, for a first look, demos and
    #: tests (at least 16 characters). Leave it unset in production.
    bootstrap_token: SecretStr | None = None
    #: Bearer token that opens GET /metrics and nothing else (Prometheus's credential);
    #: unset or empty: only `auditor` and `admin` tokens of the token file open it.
    metrics_token: SecretStr | None = None
    #: Base URL of the report service's HTTP API, written into DSMB report emails as
    #: <base>/v1/reports/<report id>/dsmb_report.html; unset: the email gives the path only.
    reports_base_url: str | None = None
    #: Base URL of the safety console (services/console); emails link to
    #: <base>/alerts/<signal id>. Unset: the emails carry no console link.
    console_url: str | None = None

    @field_validator("mail_from")
    @classmethod
    def _one_address(cls, value: str) -> str:
        # A CR or LF here would make every message fail as a header injection.
        if "@" not in value or any(c in value for c in "\r\n"):
            msg = "mail_from must be one email address, without CR or LF"
            raise ValueError(msg)
        return value

    @field_validator("ack_secret")
    @classmethod
    def _long_ack_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty or short key would let anyone who guesses it mint acknowledgement links.
        if value is not None and len(value.get_secret_value().encode("utf-8")) < MIN_KEY_BYTES:
            msg = (
                f"SAFETYMON_ACK_SECRET (ack_secret) must be at least {MIN_KEY_BYTES} bytes; unset"
                " it to use the generated <data_dir>/ack.secret"
            )
            raise ValueError(msg)
        return value

    @property
    def tokens_path(self) -> Path:
        """The token file the HTTP API authenticates against (shared with ingest)."""
        return self.tokens_file or self.data_dir / "tokens.json"

    @property
    def sent_journal_path(self) -> Path:
        """Append-only journal of SMTP 250 replies not yet known to be in the outbox."""
        return self.data_dir / "notify.sent-journal"

    @property
    def duckdb_path(self) -> Path:
        """The notify service's own DuckDB file (outbox and audit trail)."""
        return self.data_dir / "notify.duckdb"
