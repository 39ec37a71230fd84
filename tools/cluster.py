"""A JetStream cluster of nats-servers on loopback, for tests, benchmarks and the fault run.

Each node gets its own client port, cluster port, store dir and `server_name`, routes to
the others, and `sync_interval: always` (an acknowledged write is on disk on a quorum;
NOTES.md on Jepsen's lost writes under lazy fsync). Streams created with
SAFETYMON_STREAM_REPLICAS=3 survive the loss of any one node. Nodes can be killed with
SIGKILL and started again on the same ports and store, as a crashed machine comes back.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tools.embedded import free_port, nats_server_binary, stop_process, wait_listening

CLUSTER_NAME = "safetymon"


@dataclass
class Node:
    """One server of the cluster: its ports, directory and process."""

    name: str
    port: int
    cluster_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its client URL."""
        return f"nats://127.0.0.1:{self.port}"


@dataclass
class LoopbackCluster:
    """`size` nats-servers from this virtual environment (2.15 here), clustered on 127.0.0.1."""

    base_dir: Path
    size: int = 3
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pick_ports()

    def _pick_ports(self) -> None:
        ports: set[int] = set()
        while len(ports) < 2 * self.size:  # two picks can return the same free port
            ports.add(free_port())
        pairs = sorted(ports)
        self.nodes = [
            Node(f"n{i}", pairs[2 * i], pairs[2 * i + 1], self.base_dir / f"n{i}")
            for i in range(self.size)
        ]

    @property
    def urls(self) -> list[str]:
        """Every node's client URL (give clients all of them)."""
        return [node.url for node in self.nodes]

    @property
    def url_list(self) -> str:
        """The URLs as safetymon's SAFETYMON_NATS_URL takes them: comma-separated."""
        return ",".join(self.urls)

    def _config(self, node: Node) -> str:
        routes = ", ".join(
            f"nats-route://127.0.0.1:{other.cluster_port}"
            for other in self.nodes
            if other is not node
        )
        return (
            f"server_name: {node.name}\n"
            f'listen: "127.0.0.1:{node.port}"\n'
            f'jetstream {{\n  store_dir: "{node.directory / "js"}"\n  sync_interval: always\n}}\n'
            f"cluster {{\n  name: {CLUSTER_NAME}\n"
            f'  listen: "127.0.0.1:{node.cluster_port}"\n  routes: [{routes}]\n}}\n'
        )

    def start(self, timeout: float = 20.0, attempts: int = 3) -> None:
        """Start every node and wait until each accepts connections.

        A port picked free can be taken by another process before the server binds it (the
        machine is shared): then every node starts again on new ports, before any client
        knows the old ones.
        """
        for attempt in range(1, attempts + 1):
            for index in range(self.size):
                self.start_node(index, wait=False)
            try:
                for node in self.nodes:
                    _wait_listening(node, timeout)
            except RuntimeError:
                self.stop()
                if attempt == attempts:
                    raise
                self._pick_ports()
            else:
                return

    def start_node(self, index: int, *, wait: bool = True) -> None:
        """(Re)start one node on its ports and store."""
        node = self.nodes[index]
        node.directory.mkdir(parents=True, exist_ok=True)
        config = node.directory / "nats-server.conf"
        config.write_text(self._config(node))
        log = (node.directory / "nats-server.log").open("ab")
        node.process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [nats_server_binary(), "-c", str(config)], stdout=log, stderr=log
        )
        if wait:
            _wait_listening(node, 20.0)

    def kill_node(self, index: int) -> None:
        """SIGKILL one node (no shutdown, no flush beyond what is synced)."""
        node = self.nodes[index]
        if node.process is not None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(10)
            node.process = None

    def stop(self) -> None:
        """Stop every node still running."""
        for node in self.nodes:
            if node.process is None:
                continue
            stop_process(node.process, grace=10.0)
            node.process = None


def _wait_listening(node: Node, timeout: float) -> None:
    if node.process is None:
        msg = f"{node.name} is not running"
        raise RuntimeError(msg)
    wait_listening(
        node.process, node.port, name=node.name, log="its nats-server.log", timeout=timeout
    )
