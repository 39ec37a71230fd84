"""HTTP API of the report service for the DSMB role (adapters layer).

- `GET /v1/reports`: the issued reports (each one's report.json, newest as-of first);
- `GET /v1/reports/{report_id}/{file}`: one file of a report (HTML, CSV, Parquet, report.json);
- `POST /v1/reports/dsmb?as_of=...`: build a report on demand from the current log.

Every route needs a bearer token of the `dsmb` role (or `admin`), checked by kit/auth.py;
`GET /openapi.json` any token, and the interactive pages are off (as in ingest and notify).
Report ids are UUIDs and file names are looked up in the report's own directory listing, so
a request can never name a path; a symbolic link (a report directory, a file, a report.json)
is never followed, so nothing outside the reports root is served or listed. Bodies are read
under kit/http_limits.py's budget (none of these routes takes one).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse

from kit.auth import Role, TokenStore, bearer_dependency
from kit.http_limits import BodyLimits
from services.report.adapters.files import MANIFEST
from services.report.core.errors import ReportError

#: Builds a report as of a time into the reports root; returns its report.json document.
OnDemand = Callable[[datetime], Awaitable[dict[str, Any]]]
_MEDIA = {".html": "text/html; charset=utf-8", ".csv": "text/csv; charset=utf-8",
          ".parquet": "application/vnd.apache.parquet", ".json": "application/json"}  # fmt: skip


def _listing(root: Path) -> list[dict[str, Any]]:
    reports = []
    for manifest in root.glob(f"*/{MANIFEST}"):
        try:
            UUID(manifest.parent.name)
        except ValueError:
            continue
        if _linked(manifest.parent) or _linked(manifest):
            continue
        document = json.loads(manifest.read_text(encoding="utf-8"))
        reports.append({"report_id": manifest.parent.name, **document})
    return sorted(reports, key=lambda r: (r["as_of"], r["report_id"]), reverse=True)


def _file(root: Path, report_id: str, name: str) -> Path | None:
    try:
        directory = root / str(UUID(report_id))
    except ValueError:
        return None
    if _linked(directory) or not directory.is_dir():
        return None
    found = (p for p in directory.iterdir() if p.name == name and not _linked(p) and p.is_file())
    return next(found, None)


def _linked(path: Path) -> bool:
    # The writer makes plain files in plain directories; a link was put there by someone else.
    return path.is_symlink()


def build_http_app(*, root: Path, tokens: TokenStore, on_demand: OnDemand | None) -> FastAPI:
    """FastAPI app serving the reports under `root` to the DSMB."""
    # No unauthenticated documents: /openapi.json is served below to any token (it holds
    # no data, and tells other roles why they get 403), and the interactive pages, which
    # load scripts from a CDN, are off.
    api = FastAPI(
        title="safetymon report", version="1", openapi_url=None, docs_url=None, redoc_url=None
    )
    api.add_middleware(BodyLimits)
    dsmb = [Depends(bearer_dependency(tokens, Role.dsmb))]
    anyone = bearer_dependency(tokens, *Role)

    @api.get("/openapi.json", include_in_schema=False, dependencies=[Depends(anyone)])
    async def openapi() -> dict[str, Any]:
        return api.openapi()

    @api.get("/v1/reports", dependencies=dsmb)
    async def reports() -> list[dict[str, Any]]:
        """The issued reports, newest as-of first."""
        return await asyncio.to_thread(_listing, root)

    @api.get("/v1/reports/{report_id}/{name}", dependencies=dsmb, response_model=None)
    async def report_file(report_id: str, name: str) -> FileResponse:
        """One file of an issued report."""
        path = await asyncio.to_thread(_file, root, report_id, name)
        if path is None:
            raise HTTPException(404, f"no file {name} in report {report_id}")
        return FileResponse(path, media_type=_MEDIA.get(path.suffix, "application/octet-stream"))

    @api.post("/v1/reports/dsmb", dependencies=dsmb)
    async def build(
        as_of: Annotated[datetime, Query(description="Recorded-time cut-off, with a zone.")],
    ) -> dict[str, Any]:
        """Build a report on demand as of a recorded time; answer with its report.json."""
        if on_demand is None:
            raise HTTPException(503, "on-demand reports need the ingest snapshot configured")
        if as_of.utcoffset() is None:
            raise HTTPException(422, "as_of needs a time zone")
        try:
            as_of.astimezone(UTC)
        except OverflowError as exc:
            raise HTTPException(422, f"as_of is out of range: {as_of.isoformat()} in UTC "
                                     "lies outside the years 1 to 9999") from exc  # fmt: skip
        try:
            return await on_demand(as_of)
        except ReportError as exc:
            raise HTTPException(502, str(exc)) from exc

    return api
