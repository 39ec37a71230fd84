"""HTTP API of the notify service (adapters layer): acknowledgement links and the delivery log.

GET /v1/ack?token=... only shows a confirmation form, because mail scanners and link
previews fetch links by themselves; POST /v1/ack records the acknowledgement. The CLI posts
to /v1/signals/{signal_id}/ack and reads GET /v1/notifications. Tokens never reach a log.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.notify.app.alerts import Acknowledger
from services.notify.core.errors import (
    AckRejectedError,
    AckTokenExpiredError,
    AckTokenInvalidError,
    AlreadyAcknowledgedError,
)
from services.notify.ports import Acknowledgement, AlertStore

_Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
_MAX_FORM_BYTES = 8192


class AckRequest(BaseModel):
    """Body of POST /v1/signals/{signal_id}/ack: who acknowledges, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    by: _Text
    reason: _Text


def status_of(exc: AckRejectedError) -> int:
    """HTTP status of a refused acknowledgement: forged 403, expired 410, twice 409, else 404."""
    if isinstance(exc, AckTokenInvalidError):
        return 403
    if isinstance(exc, AckTokenExpiredError):
        return 410
    if isinstance(exc, AlreadyAcknowledgedError):
        return 409
    return 404


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f'</title></head><body style="font-family: sans-serif"><h2>{escape(title)}</h2>'
        f"{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def ack_json(ack: Acknowledgement) -> dict[str, Any]:
    """The JSON shape of a recorded acknowledgement."""
    return {
        "signal_id": str(ack.signal_id),
        "participant_id": ack.participant_id,
        "by": ack.by,
        "reason": ack.reason,
        "at": ack.at.isoformat(),
        "via": ack.via,
    }


def build_http_app(acknowledger: Acknowledger, store: AlertStore) -> FastAPI:
    """FastAPI app whose routes call the acknowledgement use-case and the delivery log."""
    api = FastAPI(title="safetymon notify", version="1")

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/v1/ack", response_class=HTMLResponse)
    async def ack_form(token: str = "") -> HTMLResponse:
        """Show what the link acknowledges and a button; nothing is recorded yet."""
        try:
            claims = acknowledger.check(token)
        except AckRejectedError as exc:
            return _page("Acknowledgement refused", f"<p>{escape(str(exc))}</p>", status_of(exc))
        form = (
            f"<p>Signal <code>{claims.signal_id}</code></p>"
            '<form method="post" action="/v1/ack">'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            '<label>Reason <input name="reason" maxlength="200" size="60" '
            'value="Seen; taking action"></label> '
            '<button type="submit">Acknowledge</button></form>'
        )
        return _page("Acknowledge this safety alert", form)

    @api.post("/v1/ack", response_class=HTMLResponse)
    async def ack_by_link(request: Request) -> HTMLResponse:
        """Record the acknowledgement for the link's recipient; a link works once."""
        raw = await request.body()
        form = parse_qs(raw[:_MAX_FORM_BYTES].decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        reason = (form.get("reason") or [""])[0].strip()[:200] or None
        try:
            ack = await acknowledger.by_link(token, reason=_one_line(reason))
        except AckRejectedError as exc:
            return _page("Acknowledgement refused", f"<p>{escape(str(exc))}</p>", status_of(exc))
        body = f"<p>Signal <code>{ack.signal_id}</code> acknowledged by {escape(ack.by)}.</p>"
        return _page("Acknowledged", body)

    @api.post("/v1/signals/{signal_id}/ack")
    async def ack_by_person(signal_id: UUID, request: Request) -> JSONResponse:
        """Acknowledge on behalf of a named person (the `safetymon ack` command)."""
        try:
            body = AckRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            detail = exc.errors(include_url=False, include_input=False)
            return JSONResponse({"error": "invalid request", "detail": detail}, 422)
        try:
            ack = await acknowledger.by_person(signal_id, by=body.by, reason=body.reason)
        except AckRejectedError as exc:
            return JSONResponse({"error": str(exc)}, status_of(exc))
        return JSONResponse(ack_json(ack))

    @api.get("/v1/notifications", response_model=None)
    async def delivery_log(
        signal: UUID | None = None, participant: str | None = None
    ) -> list[dict[str, Any]] | JSONResponse:
        """Every attempt, reply, acknowledgement and escalation of a signal or participant."""
        if signal is None and participant is None:
            return JSONResponse({"error": "give signal or participant"}, 400)
        return await store.delivery_log(signal_id=signal, participant_id=participant)

    return api


def _one_line(text: str | None) -> str | None:
    # Control characters would fail the AlertAcknowledged contract (and could forge lines).
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split()) if text else ""
    return cleaned or None
