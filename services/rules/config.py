"""Settings of the rules service (environment prefix SAFETYMON_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kit.nats_security import NatsClientSettings


class Settings(NatsClientSettings):  # NATS credentials and TLS: kit/nats_security.py
    """Runtime settings; built only in main.py or by the runner, passed on as plain values."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    data_dir: Path = Path("data")
    nats_url: str = "nats://127.0.0.1:4222"
    namespace: str = "safetymon"
    #: Most facts folded and committed in one transaction (one group). An alert waits for the
    #: group in hand and then its own: 128 keeps that under ~0.3 s at ~10% more commits.
    rules_batch: int = 128
    #: Facts one participant contributes to a group before the next participant's turn.
    rules_quantum: int = 32
    #: Facts read ahead of processing (the consumer's max_ack_pending): a backlog larger than
    #: this is read as it drains, so an alert arriving behind it waits for the excess.
    rules_window: int = 20_000
    #: Seconds before JetStream redelivers an unacknowledged fact; facts waiting in the window
    #: are kept alive meanwhile, so this only matters after a crash.
    rules_ack_wait: float = 30.0
    #: Versioned trial configuration (thresholds and windows of the clinical rules); None =
    #: the packaged services/rules/trial_config/NCT01724398.v1.toml.
    trial_config: Path | None = None
    #: Port of GET /metrics, /health/live and /health/ready (0: not served); the host it
    #: binds, and the bearer token /metrics then requires (unset or empty: none, so keep the
    #: port on a private network, as docker-compose.yml does).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_token: SecretStr | None = None
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: str = "INFO"

    @property
    def duckdb_path(self) -> Path:
        """The rules service's own DuckDB file (projections, tracking, signal outbox)."""
        return self.data_dir / "rules.duckdb"
