"""HTTP API of the ingest service (adapters layer).

POST /v1/events (one event or an array), GET /v1/log/head, and for auditors
POST /v1/audit/snapshot with GET /v1/audit/snapshots/{id}/{file} to fetch what it wrote.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from services.ingest.adapters.audit_export import AuditExports
from services.ingest.app import Ingest
from services.ingest.ports import EventLog

MAX_EVENTS_PER_REQUEST = 10_000


def build_http_app(ingest: Ingest, log: EventLog, *, audit: AuditExports | None = None) -> FastAPI:
    """FastAPI app whose routes call the ingest use-cases (and the audit export, if given)."""
    api = FastAPI(title="safetymon ingest", version="1")
    if audit is not None:
        _add_audit_routes(api, audit)

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/v1/log/head")
    async def head() -> dict[str, Any]:
        """Position and hash of the last log entry (read through the owning service)."""
        current = await log.head()
        return {"seq": current.seq, "hash": current.hash}

    @api.post("/v1/events")
    async def post_events(request: Request) -> JSONResponse:
        """Accept one event or a JSON array; answer per event."""
        raw = await request.body()
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            return _problem(400, f"body is not valid JSON: {exc}")
        items = body if isinstance(body, list) else [body]
        if not items:
            return _problem(400, "body is an empty array: send at least one event")
        if len(items) > MAX_EVENTS_PER_REQUEST:
            return _problem(413, f"at most {MAX_EVENTS_PER_REQUEST} events per request")
        actor = "http:" + request.headers.get("x-safetymon-actor", "anonymous")[:60]
        outcomes = await ingest.submit(items, actor=actor)
        counts = {
            s: sum(o.status == s for o in outcomes) for s in ("accepted", "duplicate", "rejected")
        }
        status = 200 if not counts["rejected"] else 422 if counts["rejected"] == len(items) else 207
        return JSONResponse(
            status_code=status, content={**counts, "results": [o.as_json() for o in outcomes]}
        )

    return api


def _add_audit_routes(api: FastAPI, audit: AuditExports) -> None:
    @api.post("/v1/audit/snapshot")
    async def snapshot() -> dict[str, Any]:
        """Write a Parquet snapshot of the log under the data directory; describe it."""
        snapshot_id, directory = audit.create()
        reply = await audit.export(directory)
        for name, entry in reply["files"].items():
            entry["download"] = f"/v1/audit/snapshots/{snapshot_id}/{name}"
        return {"snapshot_id": snapshot_id, **reply}

    @api.get("/v1/audit/snapshots/{snapshot_id}/{name}", response_model=None)
    async def snapshot_file(snapshot_id: str, name: str) -> FileResponse | JSONResponse:
        """Download one file of a snapshot written by POST /v1/audit/snapshot."""
        path = audit.resolve(snapshot_id, name)
        if path is None:
            return _problem(404, f"no snapshot file {snapshot_id}/{name}")
        return FileResponse(path, media_type="application/vnd.apache.parquet", filename=name)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": detail})
