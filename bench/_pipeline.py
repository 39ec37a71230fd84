"""A private pipeline for benchmarks: nats-server (the venv's) and the services as processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from tools.embedded import EmbeddedNats, free_port
from tools.stack import demo_routing


def load() -> str:
    """The machine's load, printed with every figure (the machine is shared)."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} on {os.cpu_count()} cores"


class Pipeline:
    """The three services as separate processes on a private NATS server."""

    def __init__(self, code: Path | None, smtp_port: int, *, sync_always: bool = True) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
        self.nats = EmbeddedNats(self.data, sync_always=sync_always)
        self.port = free_port()
        self.token = secrets.token_urlsafe(32)
        self.code = code
        self.smtp_port = smtp_port
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        print(f"pipeline data and logs: {self.data}", flush=True)
        self.nats.start()
        env = {
            **os.environ,
            "SAFETYMON_NATS_URL": self.nats.url,
            "SAFETYMON_DATA_DIR": str(self.data),
            "SAFETYMON_SMTP_HOST": "127.0.0.1",
            "SAFETYMON_SMTP_PORT": str(self.smtp_port),
            # The services have no default routing; the figures are the demo routing's.
            "SAFETYMON_ROUTING": str(demo_routing()),
            "SAFETYMON_HTTP_PORT": str(self.port),
            "SAFETYMON_BOOTSTRAP_TOKEN": self.token,
            "SAFETYMON_CLOCK_TICK_SECONDS": "0",
            "SAFETYMON_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "SAFETYMON_LOG_FORMAT": "json",
        }
        interpreter = [sys.executable]
        if self.code is not None:
            # -S: no site hooks, so the venv's editable install of this checkout cannot mix
            # its modules into the other checkout's; the venv's packages come by path.
            site = next(p for p in sys.path if p.endswith("site-packages"))
            env["PYTHONPATH"] = f"{self.code}{os.pathsep}{site}"
            interpreter = [sys.executable, "-S"]
        for service in ("notify", "rules", "ingest"):
            log = (self.data / f"{service}.log").open("ab")
            command = [*interpreter, "-c", "from safetymon.cli import app; app()"]
            self.processes.append(
                subprocess.Popen(
                    [*command, "up", "--service", service],
                    env=env,
                    stdout=log,
                    stderr=log,
                    cwd=self.code or Path.cwd(),
                )
            )

    async def wait_healthy(self, client: httpx.AsyncClient) -> None:
        """Wait until ingest answers /health."""
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
        raise SystemExit(f"ingest did not come up: see {self.data}/ingest.log")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.nats.stop()
