"""Private nats-server processes with authentication or TLS, for the credential tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tools.embedded import free_port, nats_server_binary


@contextlib.contextmanager
def nats_server(directory: Path, settings: str) -> Iterator[str]:
    """Run a nats-server (JetStream on) with extra config `settings`; yield its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "nats-server.conf"
    config.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f'jetstream {{ store_dir: "{directory / "js"}" }}\n'
        f"{settings}\n",
        encoding="utf-8",
    )
    with (directory / "nats-server.log").open("ab") as log:
        command = [nats_server_binary(), "-c", str(config)]
        process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        _wait_listening(process, port)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _wait_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"nats-server did not listen on {port}")
