"""Runtime settings of the console (config layer; environment prefix SAFETYMON_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from kit.nats_security import NatsClientSettings


class Settings(NatsClientSettings):  # NATS credentials and TLS: kit/nats_security.py
    """Where the console's file is, which streams it follows, how it serves its pages."""

    data_dir: Path = Path("data")
    nats_url: str = "nats://127.0.0.1:4222"
    namespace: str = "safetymon"
    #: The console's pages. 0 picks a free port; set one (and console_public_url) to deploy.
    console_http_host: str = "127.0.0.1"
    console_http_port: int = Field(default=0, ge=0, le=65535)
    #: Notify's HTTP API, where acknowledgements are recorded (notify writes its own file).
    #: Unset: the console shows alerts but cannot acknowledge them.
    notify_url: str | None = None
    #: The report service's HTTP API (DSMB pages). Unset: the DSMB pages say so.
    reports_url: str | None = None
    #: Secure cookies: None decides per request (HTTPS or not); set True behind a TLS proxy.
    console_secure_cookies: bool | None = None
    #: A session ends after this long without a request from its user.
    console_idle_minutes: float = Field(default=30.0, gt=0)
    #: Messages per stream taken per batch (one DuckDB transaction each).
    max_batch: int = Field(default=500, ge=2)
    #: The bearer-token file shared with the other services (default: tokens.json in data_dir).
    tokens_file: Path | None = None
    #: Accepted as an admin credential besides the token file (demos and tests only).
    bootstrap_token: SecretStr | None = None

    @property
    def tokens_path(self) -> Path:
        """The token file sign-in checks tokens against."""
        return self.tokens_file or self.data_dir / "tokens.json"

    @property
    def duckdb_path(self) -> Path:
        """The console's own DuckDB file (its projection)."""
        return self.data_dir / "console.duckdb"
