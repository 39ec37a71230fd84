"""Send JSON Lines files to the ingest HTTP API in batches, with progress and a summary."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress

from kit.auth import bearer_headers


def _batches(path: Path, size: int) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                batch.append((number, line))
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def ingest_files(
    files: Sequence[Path],
    *,
    base_url: str,
    batch: int,
    console: Console,
    token: str | None = None,
) -> dict[str, Any]:
    """Post every line; a line that is not JSON is rejected locally with its line number."""
    totals: dict[str, Any] = {"read": 0, "accepted": 0, "duplicate": 0, "rejected": 0, "errors": []}
    started = time.perf_counter()
    # The token comes from $SAFETYMON_TOKEN: never a command-line argument, which `ps` shows.
    client = ingest_client(base_url, token)
    with client, Progress(console=console) as bar:
        for path in files:
            task = bar.add_task(path.name, total=path.stat().st_size)
            for chunk in _batches(path, batch):
                _send(client, path, chunk, totals)
                bar.advance(task, sum(len(line.encode()) for _, line in chunk))
    totals["seconds"] = round(time.perf_counter() - started, 3)
    return totals


def _send(
    client: httpx.Client, path: Path, chunk: list[tuple[int, str]], totals: dict[str, Any]
) -> None:
    items, lines = [], []
    for number, line in chunk:
        totals["read"] += 1
        try:
            items.append(json.loads(line))
            lines.append(number)
        except json.JSONDecodeError as exc:
            totals["rejected"] += 1
            totals["errors"].append(
                {
                    "file": str(path),
                    "line": number,
                    "errors": [
                        {
                            "field": "(line)",
                            "reason": f"not valid JSON: {exc.msg} at column {exc.colno}",
                        }
                    ],
                }
            )
    if not items:
        return
    for result in post_events(client, items):
        totals[result["status"]] += 1
        if result["status"] == "rejected":
            line = lines[result["index"]]
            totals["errors"].append({"file": str(path), "line": line, "errors": result["errors"]})


def post_events(client: httpx.Client, items: list[Any]) -> list[dict[str, Any]]:
    """POST one batch to /v1/events and return ingest's per-item results, in item order."""
    try:
        response = client.post("/v1/events", json=items)
    except httpx.ConnectError as exc:
        msg = f"no ingest service at {client.base_url}: start it with `safetymon up` ({exc})"
        raise SystemExit(msg) from exc
    if response.status_code in (401, 403):
        msg = f"ingest refused the credential ({response.status_code}): {response.text[:500]}"
        msg += "; set SAFETYMON_TOKEN to a token from `safetymon tokens create`"
        raise SystemExit(msg)
    if response.status_code not in (200, 207, 422):
        msg = f"ingest answered {response.status_code}: {response.text[:500]}"
        raise SystemExit(msg)
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def ingest_client(base_url: str, token: str | None = None) -> httpx.Client:
    """The HTTP client every import posts with: `token`, else $SAFETYMON_TOKEN, as Bearer."""
    return httpx.Client(base_url=base_url, timeout=120, headers=bearer_headers(token))
