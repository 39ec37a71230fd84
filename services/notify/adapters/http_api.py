"""HTTP API of the notify service (adapters layer): acknowledgement links and the delivery log.

GET /v1/ack?token=... only shows a confirmation form, because mail scanners and link
previews fetch links by themselves; POST /v1/ack records the acknowledgement. Tokens never
reach a log. The page offers no form for an alert that cannot be acknowledged any more: it
says the signal was retracted (or superseded), or that it was acknowledged already, with the
status the POST would answer (410, 409).

Who may do what (bearer tokens of kit/auth.py, `admin` everywhere):
- GET /health, and GET/POST /v1/ack: anyone. The link's HMAC token is the credential: it
  names the one notification it was issued for and expires (SAFETYMON_ACK_TTL_HOURS);
- GET /v1/notifications: `safety_officer`, `auditor`, and an `investigator` for its own site's
  participants; a signal or participant with no notifications answers 404, and so does one
  of another site to an investigator (the same body: it learns nothing);
- POST /v1/signals/{signal_id}/ack: a role the alert was routed to (`safety_officer` for the
  safety officer and backup, `dsmb` for the DSMB and its chair, an `investigator` of the
  signal's own site) and `admin` (core/authority.py); another site's alert answers 404 as a
  missing one, a role it was not routed to 403. The acknowledgement's `by` is the token
  (`token:<name>`), or the named person it assigns the alert to with the token that did
  (`<name> (assigned by token:<name>)`), and its channel `http` or `console`;
- GET /openapi.json: any token;
- GET /metrics: the scrape token (SAFETYMON_METRICS_TOKEN), `auditor` and `admin`; GET
  /health/live and /health/ready: anyone (kit/metrics.py).
Bodies are read under kit/http_limits.py's budget (64 KiB, 30 s).
The NATS request subjects (`<ns>.notify.ack`, `<ns>.notify.log`, nats_requests.py) are
guarded by NATS itself: whoever the server lets publish on them may use them (see
kit/nats_security.py and the README, "Alerts": Access).
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kit.auth import Principal, Role, TokenStore, bearer_dependency
from kit.http_limits import BodyLimits
from kit.metrics import Observability, install_routes
from services.notify.app.alerts import Acknowledger
from services.notify.core.errors import (
    AckForbiddenError,
    AckRejectedError,
    AckTokenExpiredError,
    AckTokenInvalidError,
    AlertClosedError,
    AlreadyAcknowledgedError,
)
from services.notify.ports import Acknowledgement, AlertStore, DeliveryLogRow

_Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
_MAX_FORM_BYTES = 8192
#: The largest body any route takes (a form or a reason) is far below this.
_MAX_BODY_BYTES = 64 * 1024


class AckRequest(BaseModel):
    """An acknowledgement on someone's behalf (NATS `<ns>.notify.ack`): who, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    by: _Text
    reason: _Text


class HttpAckRequest(BaseModel):
    """Body of POST /v1/signals/{signal_id}/ack: why; who is the bearer token's principal.

    `assign_to` names the person who takes the alert when it is not the principal (a safety
    officer hands it to the on-site investigator); the record keeps both. `channel` says
    which screen the principal used (the console says so; a script leaves it out).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: _Text
    assign_to: _Text | None = None
    channel: Literal["http", "console"] = "http"


def status_of(exc: AckRejectedError) -> int:
    """HTTP status of a refused acknowledgement.

    Forged link or a role the alert was not routed to 403; expired link or retracted signal
    410; acknowledged before 409; else (unknown, or another site's) 404.
    """
    if isinstance(exc, AckTokenInvalidError | AckForbiddenError):
        return 403
    if isinstance(exc, AckTokenExpiredError | AlertClosedError):
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


def build_http_app(
    acknowledger: Acknowledger,
    store: AlertStore,
    *,
    tokens: TokenStore,
    observability: Observability | None = None,
) -> FastAPI:
    """FastAPI app whose routes call the acknowledgement use-case and the delivery log.

    `observability` adds /metrics and the /health/live and /health/ready probes.
    """
    # No unauthenticated documents: /openapi.json is served below to any token, and the
    # interactive pages (which load scripts from a CDN) are off, as in ingest.
    api = FastAPI(
        title="safetymon notify", version="1", openapi_url=None, docs_url=None, redoc_url=None
    )
    api.add_middleware(BodyLimits, max_bytes=_MAX_BODY_BYTES)
    readers = bearer_dependency(tokens, Role.safety_officer, Role.investigator, Role.auditor)
    # The alert's own routing decides further (Acknowledger.by_token).
    acknowledgers = bearer_dependency(tokens, Role.safety_officer, Role.investigator, Role.dsmb)
    anyone = bearer_dependency(tokens, *Role)
    if observability is not None:
        install_routes(api, observability, tokens=tokens)

    @api.get("/openapi.json", include_in_schema=False, dependencies=[Depends(anyone)])
    async def openapi() -> dict[str, Any]:
        return api.openapi()

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/v1/ack", response_class=HTMLResponse)
    async def ack_form(token: str = "") -> HTMLResponse:
        """Show what the link acknowledges and a button; nothing is recorded yet."""
        try:
            claims = acknowledger.check(token)
            await store.check_acknowledgeable(claims.signal_id)
        except AlreadyAcknowledgedError as exc:
            # Who acknowledged may be a person's name or address: the page does not say.
            body = f"<p>Signal <code>{claims.signal_id}</code> was already acknowledged.</p>"
            return _page("Already acknowledged", body, status_of(exc))
        except AlertClosedError as exc:
            return _page("Nothing to acknowledge", f"<p>{escape(str(exc))}</p>", status_of(exc))
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

    @api.post("/v1/signals/{signal_id}/ack", response_model=None)
    async def ack_by_token(
        signal_id: UUID,
        request: Request,
        # FastAPI's idiom; `Annotated` cannot name a closure under postponed annotations.
        principal: Principal = Depends(acknowledgers),  # noqa: B008
    ) -> JSONResponse:
        """Acknowledge as the token's principal, who takes responsibility for follow-up."""
        try:
            body = HttpAckRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            detail = exc.errors(include_url=False, include_input=False)
            return JSONResponse({"error": "invalid request", "detail": detail}, 422)
        try:
            ack = await acknowledger.by_token(
                signal_id, role=principal.role.value, site=principal.site,
                actor=principal.actor, reason=body.reason, assign_to=body.assign_to,
                via=body.channel,
            )  # fmt: skip
        except AckRejectedError as exc:
            return JSONResponse({"error": str(exc)}, status_of(exc))
        return JSONResponse(ack_json(ack))

    @api.get("/v1/notifications", response_model=None)
    async def delivery_log(
        signal: UUID | None = None,
        participant: str | None = None,
        principal: Principal = Depends(readers),  # noqa: B008 - as above
    ) -> list[DeliveryLogRow] | JSONResponse:
        """Every attempt, reply, acknowledgement and escalation of a signal or participant."""
        if signal is None and participant is None:
            return JSONResponse({"error": "give signal or participant"}, 400)
        rows = await store.delivery_log(signal_id=signal, participant_id=participant)
        if not rows or _outside_site(principal, rows):
            # One answer for nothing and for another site's: an investigator cannot tell
            # which participants or signals exist elsewhere.
            return JSONResponse({"error": "not found"}, 404)
        return rows

    return api


def _outside_site(principal: Principal, rows: list[DeliveryLogRow]) -> bool:
    """Whether an investigator asks about another site's participant or signal.

    Rows without a participant of their own (a DSMB report's emails, site "ALL") name
    nobody, so they are not held to a site.
    """
    if principal.role is not Role.investigator:
        return False
    sites = {row.get("site_id") for row in rows if row.get("site_id") not in (None, "ALL")}
    return bool(sites - {principal.site})


def _one_line(text: str | None) -> str | None:
    # Control characters would fail the AlertAcknowledged contract (and could forge lines).
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split()) if text else ""
    return cleaned or None
