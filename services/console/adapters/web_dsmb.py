"""The DSMB pages (adapters layer): the reports list, one report, build one as of a date.

Open to `dsmb` and `admin`, the roles the report service serves; everything is asked of the
report service with the viewer's own token. A report is shown as the report service wrote it,
under a Content-Security-Policy of its own: no scripts at all (sandbox), its inline styles.
"""

from __future__ import annotations

import re
from typing import Final
from uuid import UUID

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from services.console.adapters.reports_client import ReportsClient
from services.console.adapters.sessions import Session
from services.console.adapters.web_auth import Guard, form_of
from services.console.adapters.web_render import Pages

DSMB_ROLES: Final = frozenset({"dsmb", "admin"})
REPORT_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def install_dsmb(api: FastAPI, guard: Guard, pages: Pages, reports: ReportsClient) -> None:
    """GET /dsmb, GET /dsmb/reports/{id}, POST /dsmb/build."""

    def page(session: Session, status: int = 200, message: str | None = None) -> Response:
        return pages.render(
            "error.html.j2",
            status,
            title="DSMB reports",
            message=message,
            viewer=session.viewer,
            csrf=session.csrf,
        )

    async def listing(session: Session, message: str | None, status: int = 200) -> Response:
        answer = await reports.listing(session.token)
        if answer.status != 200:
            return page(session, 502, "The report service did not answer the list.")
        return pages.render(
            "dsmb.html.j2",
            status,
            rows=answer.json,
            message=message,
            viewer=session.viewer,
            csrf=session.csrf,
        )

    def member(request: Request) -> Session | Response:
        session = guard.session(request)
        if session is None:
            return RedirectResponse("/signin", 303)
        if session.viewer.role not in DSMB_ROLES:
            return page(session, 403, "The DSMB pages are for the dsmb role.")
        if not reports.configured:
            return page(session, 503, "No report service is configured (reports_url).")
        return session

    @api.get("/dsmb")
    async def dsmb(request: Request) -> Response:
        session = member(request)
        return session if isinstance(session, Response) else await listing(session, None)

    @api.get("/dsmb/reports/{report_id}")
    async def report(request: Request, report_id: UUID) -> Response:
        session = member(request)
        if isinstance(session, Response):
            return session
        answer = await reports.html(session.token, str(report_id))
        if answer.status != 200:
            return page(session, 404, "Not found")
        return Response(
            answer.content,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": REPORT_CSP},
        )

    @api.post("/dsmb/build")
    async def build(request: Request) -> Response:
        session = member(request)
        if isinstance(session, Response):
            return session
        form = await form_of(request)
        if not session.csrf_ok(form.get("csrf")):
            return page(session, 403, "The form expired or came from elsewhere.")
        as_of = form.get("as_of", "")
        if not _DATE.match(as_of):
            return await listing(session, "Give the date as YYYY-MM-DD.", 422)
        answer = await reports.build(session.token, f"{as_of}T00:00:00+00:00")
        if answer.status != 200:
            return await listing(session, f"The report service answered {answer.status}.", 502)
        return await listing(session, f"Built the report as of {as_of} 00:00 UTC.")
