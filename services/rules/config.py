"""Settings of the rules service (environment prefix SAFETYMON_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kit.nats_security import NatsClientSettings
from schemas.subjects import MAX_PARTITIONS, rules_file


class Settings(NatsClientSettings):  # NATS credentials and TLS: kit/nats_security.py
    """Runtime settings; built only in main.py or by the runner, passed on as plain values."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    data_dir: Path = Path("data")
    #: One server, or every server of a cluster comma-separated (nats://a:4222,nats://b:4222).
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
    #: Partitions of the facts (equal to ingest's SAFETYMON_PARTITIONS; fixed per deployment).
    #: Each has its own durable consumer and DuckDB file, owned by one worker at a time.
    partitions: int = Field(default=1, ge=1, le=MAX_PARTITIONS)
    #: This worker's id (0, 1, ...): unique among the workers sharing `data_dir`.
    rules_worker: int = Field(default=0, ge=0, le=999)
    #: Worker processes `safetymon up` starts for the rules (ids 0 .. n-1). Partitions are
    #: dealt round-robin over the workers that are up; a dead worker's are taken over.
    rules_workers: int = Field(default=1, ge=1, le=64)
    #: Seconds between ownership looks (who is up; claim or hand back partitions). A worker
    #: missing on two looks in a row counts as down.
    rules_ownership_check_s: float = Field(default=1.0, gt=0, le=60)
    #: Replicas of the streams this service creates (3 on a three-node cluster).
    stream_replicas: int = Field(default=1, ge=1, le=5)
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: str = "INFO"

    @property
    def duckdb_path(self) -> Path:
        """The rules service's own DuckDB file (projections, tracking, signal outbox)."""
        return self.partition_path(0)

    def partition_path(self, partition: int) -> Path:
        """The DuckDB file of one partition (`rules.duckdb` when there is only one)."""
        return self.data_dir / rules_file(partition, self.partitions)

    @property
    def owners_dir(self) -> Path:
        """Where the workers' and partitions' lock files live (kit.ownership)."""
        return self.data_dir / "rules-owners"
