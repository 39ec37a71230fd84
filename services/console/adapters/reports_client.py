"""The report service's HTTP API, asked as the signed-in DSMB member (adapters layer).

The console keeps no copy of DSMB reports: it lists, shows and requests them through the
report service's own API with the viewer's bearer token, so the report service's role check
(`dsmb`, `admin`) is the one that decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class Answer:
    """The report service's status and body (JSON, or bytes for a file)."""

    status: int
    json: Any = None
    content: bytes = b""


class ReportsClient:
    """GET /v1/reports, GET /v1/reports/{id}/dsmb_report.html, POST /v1/reports/dsmb."""

    def __init__(self, base_url: str | None, *, timeout: float = 120.0) -> None:
        self._base = base_url.rstrip("/") if base_url else None
        self._timeout = timeout  # building a report on demand takes a while

    @property
    def configured(self) -> bool:
        """Whether a report service is configured at all."""
        return self._base is not None

    async def _call(self, method: str, path: str, token: str, **kw: Any) -> Answer:  # noqa: ANN401 - httpx's keywords
        if self._base is None:
            return Answer(503)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.request(method, self._base + path, headers=headers, **kw)
        except httpx.HTTPError:
            return Answer(503)
        kind = response.headers.get("content-type", "")
        body = response.json() if kind.startswith("application/json") else None
        return Answer(response.status_code, body, response.content)

    async def listing(self, token: str) -> Answer:
        """The issued reports, newest first."""
        return await self._call("GET", "/v1/reports", token)

    async def html(self, token: str, report_id: str) -> Answer:
        """One report's HTML."""
        return await self._call("GET", f"/v1/reports/{report_id}/dsmb_report.html", token)

    async def build(self, token: str, as_of: str) -> Answer:
        """Build a report as of a recorded time (ISO 8601 with a zone)."""
        return await self._call("POST", "/v1/reports/dsmb", token, params={"as_of": as_of})
