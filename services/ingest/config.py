"""Settings of the ingest service (environment prefix SAFETYMON_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings; built only in main.py or by the runner, passed on as plain values."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    data_dir: Path = Path("data")
    nats_url: str = "nats://127.0.0.1:4222"
    namespace: str = "safetymon"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    publish_batch: int = 500

    @property
    def duckdb_path(self) -> Path:
        """The ingest service's own DuckDB file (the hash-chained log)."""
        return self.data_dir / "ingest.duckdb"
