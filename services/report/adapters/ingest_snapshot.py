"""Fetch the event log from the running ingest service's audit snapshot (adapters layer).

One writer per DuckDB file: the report never opens ingest's file. It asks ingest to write a
Parquet snapshot on its own writer thread (`POST /v1/audit/snapshot`), downloads
`GET /v1/audit/snapshots/{id}/event_log.parquet`, and checks the file's SHA-256 against the
one ingest reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import httpx

from kit.files import file_sha256
from services.report.core.errors import SourceError

EVENT_LOG: Final = "event_log.parquet"


def fetch_event_log(
    ingest_url: str, directory: Path, *, headers: dict[str, str] | None = None, timeout: float = 120
) -> Path:
    """Download a fresh snapshot of the log into `directory`; return the file's path.

    `headers` carries credentials once ingest's audit routes require them.

    Raises:
        SourceError: ingest cannot be reached, refuses, or the file arrived damaged.

    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / EVENT_LOG
    try:
        with httpx.Client(base_url=ingest_url, timeout=timeout, headers=headers) as client:
            reply = client.post("/v1/audit/snapshot")
            reply.raise_for_status()
            body: dict[str, Any] = reply.json()
            entry = body["files"][EVENT_LOG]
            with client.stream("GET", entry["download"]) as response:
                response.raise_for_status()
                with target.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
    except httpx.HTTPError as exc:
        raise SourceError(f"ingest at {ingest_url}: {type(exc).__name__}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"ingest's snapshot reply is malformed: {exc!r}") from exc
    if "sha256" in entry and file_sha256(target) != entry["sha256"]:
        raise SourceError("the downloaded event log does not match the SHA-256 ingest reported")
    return target
