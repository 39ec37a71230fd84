"""Settings of `audit serve` (environment prefix SAFETYMON_AUDIT_; the CLI passes its options)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the audit HTTP API serves, and the files it judges by; built only in main or the CLI."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_AUDIT_", frozen=True, extra="ignore")

    #: Directory whose subdirectories are bundles (each served under its directory name).
    bundles: Path
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    #: The chained log of every request; default <bundles>/audit_queries.jsonl.
    query_log: Path | None = None
    #: Trial configuration for bundles without a history (default: the rules service's).
    trial_config: Path | None = None
    #: Routing file reconcile judges by (default: the one notify reads).
    routing: Path | None = None
    #: Directory of verified replay checkpoints the queries start from and add to.
    checkpoints: Path | None = None

    @property
    def query_log_path(self) -> Path:
        """Where the query log is appended."""
        return self.query_log or self.bundles / "audit_queries.jsonl"
