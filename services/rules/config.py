"""Settings of the rules service (environment prefix SAFETYMON_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import SettingsConfigDict

from kit.nats_security import NatsClientSettings


class Settings(NatsClientSettings):  # NATS credentials and TLS: kit/nats_security.py
    """Runtime settings; built only in main.py or by the runner, passed on as plain values."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    data_dir: Path = Path("data")
    nats_url: str = "nats://127.0.0.1:4222"
    namespace: str = "safetymon"
    rules_batch: int = 200
    #: How long JetStream waits for an ack before redelivering a fetched fact (fixed when the
    #: durable consumer is first created).
    #: Seconds before JetStream redelivers an unacknowledged batch (e.g. after a crash).
    rules_ack_wait: float = 10.0
    #: Versioned trial configuration (thresholds and windows of the clinical rules); None =
    #: the packaged services/rules/trial_config/NCT01724398.v1.toml.
    trial_config: Path | None = None
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: str = "INFO"

    @property
    def duckdb_path(self) -> Path:
        """The rules service's own DuckDB file (projections, tracking, signal outbox)."""
        return self.data_dir / "rules.duckdb"
