"""The console's pages (adapters layer): inbox, alert, participant, live events, acknowledge.

Every route finds the session first (no session: sign-in page, or 401 for fragments and the
event stream), then asks the app's views, which apply the APIs' role and site rules: another
site's alert or participant answers 404 exactly like an unknown one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from services.console.adapters.live import LiveHub
from services.console.adapters.sessions import Session
from services.console.adapters.web_auth import Guard, form_of
from services.console.adapters.web_render import Pages
from services.console.app import Views, audit_view
from services.console.core.alerts import Filters
from services.console.core.errors import ForbiddenError, NotFoundError
from services.console.ports import Acknowledgements, Change

_HEARTBEAT_S: Final = 15.0
_FILTERS: Final = ("urgency", "category", "site", "participant", "state")


def _filters(request: Request) -> Filters:
    query = request.query_params
    return Filters(**{name: query.get(name, "")[:64] for name in _FILTERS})


def _query(filters: Filters) -> str:
    return urlencode({n: getattr(filters, n) for n in _FILTERS if getattr(filters, n)})


def install_pages(
    api: FastAPI, guard: Guard, views: Views, pages: Pages, *, acks: Acknowledgements, hub: LiveHub
) -> None:
    """The pages, fragments, event stream and the acknowledge action."""

    def refused(session: Session | None, exc: Exception) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 403
        title = "Not found" if status == 404 else "Not allowed"
        viewer, csrf = (session.viewer, session.csrf) if session else (None, "")
        return pages.render(
            "error.html.j2", status, title=title, message=title, viewer=viewer, csrf=csrf
        )

    def signin() -> Response:
        return RedirectResponse("/signin", 303)

    @api.get("/")
    async def home() -> Response:
        return RedirectResponse("/inbox", 303)

    @api.get("/inbox")
    async def inbox(request: Request) -> Response:
        if (session := guard.session(request)) is None:
            return signin()
        filters = _filters(request)
        try:
            rows = await views.inbox(session.viewer, filters)
        except ForbiddenError as exc:
            return refused(session, exc)
        return pages.render(
            "inbox.html.j2",
            rows=rows,
            filters=filters,
            query=_query(filters),
            viewer=session.viewer,
            csrf=session.csrf,
        )

    @api.get("/inbox/rows")
    async def inbox_rows(request: Request) -> Response:
        if (session := guard.session(request, touch=False)) is None:
            return Response(status_code=401)
        try:
            rows = await views.inbox(session.viewer, _filters(request))
        except ForbiddenError as exc:
            return refused(session, exc)
        return pages.render("_inbox_rows.html.j2", rows=rows)

    @api.get("/alerts/{signal_id}")
    async def alert(request: Request, signal_id: str) -> Response:
        if (session := guard.session(request)) is None:
            return signin()
        return await _alert_page(session, signal_id, message=None, status=200)

    async def _alert_page(
        session: Session, signal_id: str, *, message: str | None, status: int
    ) -> Response:
        try:
            view = await views.alert(session.viewer, signal_id[:64])
        except (NotFoundError, ForbiddenError) as exc:
            return refused(session, exc)
        return pages.render(
            "alert.html.j2",
            status,
            view=view,
            viewer=session.viewer,
            csrf=session.csrf,
            message=message,
        )

    @api.get("/alerts/{signal_id}/log")
    async def alert_log(request: Request, signal_id: str) -> Response:
        if (session := guard.session(request, touch=False)) is None:
            return Response(status_code=401)
        try:
            view = await views.alert(session.viewer, signal_id[:64])
        except (NotFoundError, ForbiddenError) as exc:
            return refused(session, exc)
        return pages.render("_delivery_log.html.j2", alert=view.alert)

    @api.post("/alerts/{signal_id}/ack")
    async def acknowledge(request: Request, signal_id: str) -> Response:
        session = guard.session(request)
        form = await form_of(request)
        if session is None or not session.csrf_ok(form.get("csrf")):
            return pages.render(
                "error.html.j2",
                403,
                title="Refused",
                viewer=None,
                message="The form expired or came from elsewhere.",
            )
        try:  # the viewer must see the alert before notify is even asked
            await views.alert(session.viewer, signal_id[:64])
        except (NotFoundError, ForbiddenError) as exc:
            return refused(session, exc)
        reason = " ".join(form.get("reason", "").split())[:200]
        if not reason:
            return await _alert_page(session, signal_id, message="Give a reason.", status=422)
        assignee = " ".join(form.get("assign_to", "").split())[:100] or None
        outcome = await acks.acknowledge(
            signal_id, token=session.token, reason=reason, assign_to=assignee
        )
        status = 200 if outcome.status == 200 else outcome.status
        return await _alert_page(session, signal_id, message=outcome.message, status=status)

    @api.get("/participants/{participant_id}")
    async def participant(request: Request, participant_id: str) -> Response:
        if (session := guard.session(request)) is None:
            return signin()
        try:
            view = await views.participant(session.viewer, participant_id[:64])
        except (NotFoundError, ForbiddenError) as exc:
            return refused(session, exc)
        return pages.render(
            "participant.html.j2", view=view, viewer=session.viewer, csrf=session.csrf
        )

    @api.get("/events")
    async def events(request: Request) -> Response:
        if (session := guard.session(request, touch=False)) is None:
            return Response(status_code=401)
        return StreamingResponse(
            _stream(guard, request, session, hub), media_type="text/event-stream"
        )


def install_audit(api: FastAPI, guard: Guard, views: Views, pages: Pages) -> None:
    """The audit page: auditor and admin only."""

    @api.get("/audit")
    async def audit(request: Request) -> Response:
        if (session := guard.session(request)) is None:
            return RedirectResponse("/signin", 303)
        try:
            view = await audit_view(views.store, session.viewer)
        except ForbiddenError:
            return pages.render(
                "error.html.j2",
                403,
                title="Not allowed",
                message="Not allowed",
                viewer=session.viewer,
                csrf=session.csrf,
            )
        return pages.render("audit.html.j2", view=view, viewer=session.viewer, csrf=session.csrf)


async def _stream(
    guard: Guard, request: Request, session: Session, hub: LiveHub
) -> AsyncIterator[str]:
    """`change` events the viewer may know of; ends when the session does."""
    async with hub.listen() as queue:
        yield "retry: 2000\n\n"
        while guard.session(request, touch=False) is not None:
            change: Change | None = None
            with contextlib.suppress(TimeoutError):
                change = await asyncio.wait_for(queue.get(), _HEARTBEAT_S)
                if change is None:
                    return
            if change is None:
                yield ": keep-alive\n\n"
            elif any(session.viewer.sees(site) for site in change.sites):
                # Only which kinds moved: never an id, a participant or a site.
                yield f"event: change\ndata: {json.dumps(sorted(change.sources))}\n\n"
