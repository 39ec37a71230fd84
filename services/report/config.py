"""Runtime settings of the report service (config layer; env prefix SAFETYMON_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the log comes from, where reports are announced, which configuration applies."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    namespace: str = "safetymon"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    report_config: Path | None = None

    @property
    def ingest_url(self) -> str:
        """Base URL of the ingest API whose audit snapshot the report reads."""
        return f"http://{self.http_host}:{self.http_port}"
