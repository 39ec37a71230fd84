"""The audit API's own query log: who asked what, when, and the answer's status (shell).

Append-only JSON Lines, hash-chained like the event log (`hash = sha256(prev_hash ||
canonical bytes)`), so a query log handed to an inspector shows whether lines were removed
or changed. Each entry is also logged as the structlog event `audit_query`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from kit.auth import Principal
from schemas import GENESIS_HASH, canonical_bytes, chain_hash

log = structlog.get_logger("safetymon.audit")


class QueryLog:
    """Appends one chained line per request to `path` (created if missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seq, self._head = _tail(path)

    def record(
        self,
        *,
        principal: Principal | None,
        method: str,
        path: str,
        query: Mapping[str, str],
        status: int,
    ) -> dict[str, Any]:
        """Append who (token name, id, role; null when refused before auth), what and when."""
        entry: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(),
            "who": None if principal is None else principal.actor,
            "token_id": None if principal is None else principal.token_id,
            "role": None if principal is None else principal.role.value,
            "method": method,
            "path": path,
            "query": dict(query),
            "status": status,
        }
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            entry["prev_hash"] = self._head
            entry["hash"] = chain_hash(self._head, canonical_bytes(entry))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
            self._head = entry["hash"]
        shown = ("who", "role", "method", "path", "status")
        log.info("audit_query", **{key: entry[key] for key in shown})
        return entry


def _tail(path: Path) -> tuple[int, str]:
    """The last entry's seq and hash, to continue the chain after a restart."""
    if not path.is_file():
        return 0, GENESIS_HASH
    last = None
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                last = line
    if last is None:
        return 0, GENESIS_HASH
    entry = json.loads(last)
    return int(entry["seq"]), str(entry["hash"])


def read_query_log(path: Path) -> list[dict[str, Any]]:
    """Every entry of a query log, in order."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
