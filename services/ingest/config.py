"""Settings of the ingest service (environment prefix SAFETYMON_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kit.nats_security import NatsClientSettings
from schemas.subjects import MAX_PARTITIONS


class Settings(NatsClientSettings):  # NATS credentials and TLS: kit/nats_security.py
    """Runtime settings; built only in main.py or by the runner, passed on as plain values."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    data_dir: Path = Path("data")
    #: One server, or every server of a cluster comma-separated (nats://a:4222,nats://b:4222).
    nats_url: str = "nats://127.0.0.1:4222"
    namespace: str = "safetymon"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    #: Entries the relay has in flight to JetStream at once. An urgent fact can go ahead of a
    #: backlog, but not of what is in flight: with `sync_interval: always` the server stores
    #: ~1,000-2,000 a second here, so 100 keeps that wait near 0.1 s at little cost.
    publish_batch: int = 100
    #: Partitions the facts are spread over by (trial, participant), for rules workers to
    #: share (see README "Partitions"). Fixed per deployment and equal in every service:
    #: 1 keeps the unpartitioned subjects. A clock tick is published into every partition.
    partitions: int = Field(default=1, ge=1, le=MAX_PARTITIONS)
    #: Replicas of the streams this service creates (3 on a three-node cluster).
    stream_replicas: int = Field(default=1, ge=1, le=5)
    #: The bearer-token file written by `safetymon tokens` (default: tokens.json in data_dir).
    tokens_file: Path | None = None
    #: Accepted as an admin credential besides the token file, for a first look, demos and
    #: tests. Real tokens need none: `safetymon tokens create` writes the file directly.
    #: Leave it unset in production.
    bootstrap_token: SecretStr | None = None
    #: Period of the ClockTicked facts that drive time-based rules (SAE-02's 24 h clock);
    #: 0 appends none. Every reader of the log handles `clock_ticked` (the audit replay
    #: re-derives SAE-02 from them; the DSMB report skips them), so ticks are on: a minute
    #: makes a reminder or overdue alert at most a minute late.
    clock_tick_seconds: int = 60
    #: Trials the ticks are appended for.
    clock_trials: tuple[str, ...] = ("NCT01724398",)

    #: How often the log's head is published on `<ns>.anchor.ingest.head` when it moved
    #: (audit verify and the next start compare the file with these heads).
    head_anchor_seconds: float = 10.0
    #: Bearer token that opens GET /metrics and nothing else (Prometheus's credential);
    #: unset or empty: only `auditor` and `admin` tokens of the token file open it.
    metrics_token: SecretStr | None = None

    @property
    def duckdb_path(self) -> Path:
        """The ingest service's own DuckDB file (the hash-chained log)."""
        return self.data_dir / "ingest.duckdb"

    @property
    def tokens_path(self) -> Path:
        """The token file the HTTP API authenticates against."""
        return self.tokens_file or self.data_dir / "tokens.json"
