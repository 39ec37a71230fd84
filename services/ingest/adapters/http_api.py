"""HTTP API of the ingest service (adapters layer).

POST /v1/events (one event or an array), GET /v1/log/head, and for auditors
POST /v1/audit/snapshot with GET /v1/audit/snapshots/{id}/{file} to fetch what it wrote.

Every route but /health, /health/live and /health/ready needs a bearer token (kit/auth.py).
Who may do what:
- POST /v1/events: `submitter` (its own site's participants only) and `admin`;
- GET /v1/log/head: `submitter`, `auditor` (read-only everywhere) and `admin`;
- the audit snapshot routes: `auditor` and `admin`;
- GET /openapi.json: any token;
- GET /metrics: the scrape token (SAFETYMON_METRICS_TOKEN), `auditor` and `admin`
  (kit/metrics.py).

Bodies are read under kit/http_limits.py's budget (at most MAX_BODY_BYTES, within 30 s) and
nested at most MAX_JSON_DEPTH deep: no event is nested that deep, and deeper JSON would
exhaust the parser's (and later the validators') recursion.

Every request gets a request id (the client's `X-Request-ID` when it is a plain token of at
most 64 characters, else a new one), bound to its log lines and returned in `X-Request-ID`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from uuid import uuid4

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.auth import Principal, Role, TokenStore, bearer_dependency
from kit.http_limits import BodyLimits
from kit.metrics import Observability, install_routes
from services.ingest.adapters import openapi_doc
from services.ingest.adapters.audit_export import AuditExports
from services.ingest.adapters.metrics import IngestMetrics
from services.ingest.app import Ingest
from services.ingest.core.errors import OutOfSiteError
from services.ingest.ports import EventLog

MAX_EVENTS_PER_REQUEST = 10_000
#: A full batch of 10,000 events is a few MB; this leaves room for long payloads.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Arrays and objects inside one another; an event needs about 5.
MAX_JSON_DEPTH = 32
#: Documented in the OpenAPI document, so clients (and schemathesis) know every answer.
_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or an unknown or revoked one."},
    403: {"description": "The token's role (or site) may not do this."},
}
_EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_AUTH_RESPONSES,
    200: {"description": "Every event accepted or a duplicate; one result per event."},
    207: {"description": "Some events rejected, each with its fields and reasons."},
    400: {"description": "The body is not JSON, nested too deep, or an empty array."},
    403: {"description": "The token's role may not submit, or items lie outside its site."},
    408: {"description": "The body did not arrive within 30 s."},
    413: {"description": f"More than {MAX_EVENTS_PER_REQUEST} events or {MAX_BODY_BYTES} bytes."},
    422: {"description": "Every event rejected, each with its fields and reasons."},
}


def build_http_app(
    ingest: Ingest,
    log: EventLog,
    *,
    tokens: TokenStore,
    audit: AuditExports | None = None,
    metrics: IngestMetrics | None = None,
    observability: Observability | None = None,
) -> FastAPI:
    """FastAPI app whose routes call the ingest use-cases (and the audit export, if given).

    `metrics` counts the answered submissions; `observability` adds /metrics and the
    /health/live and /health/ready probes.
    """
    # No unauthenticated documents: the OpenAPI document is served below to any token, and
    # the interactive pages (which load scripts from a CDN) are off.
    api = FastAPI(
        title="safetymon ingest", version="1", openapi_url=None, docs_url=None, redoc_url=None
    )
    api.add_middleware(BodyLimits, max_bytes=MAX_BODY_BYTES)
    # Added last, so outermost: a 408 or 413 from BodyLimits carries the request id too.
    api.add_middleware(RequestIds)
    _describe_submissions(api)
    submitters = bearer_dependency(tokens, Role.submitter)
    readers = bearer_dependency(tokens, Role.submitter, Role.auditor)
    anyone = bearer_dependency(tokens, *Role)
    if audit is not None:
        _add_audit_routes(api, audit, bearer_dependency(tokens, Role.auditor))
    if observability is not None:
        install_routes(api, observability, tokens=tokens)

    @api.get("/openapi.json", include_in_schema=False, dependencies=[Depends(anyone)])
    async def openapi() -> dict[str, Any]:
        return api.openapi()

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/v1/log/head", dependencies=[Depends(readers)], responses=_AUTH_RESPONSES)
    async def head() -> dict[str, Any]:
        """Position and hash of the last log entry, and how far JetStream has confirmed it."""
        current = await log.head()
        published = await log.published_position()
        return {"seq": current.seq, "hash": current.hash, "published": published}

    @api.post(
        "/v1/events",
        responses=_EVENTS_RESPONSES,
        openapi_extra={"requestBody": openapi_doc.request_body()},
    )
    async def post_events(
        request: Request,
        # FastAPI's idiom; `Annotated` cannot name a closure under postponed annotations.
        principal: Principal = Depends(submitters),  # noqa: B008
    ) -> JSONResponse:
        """Accept one event or a JSON array; answer per event, attributed to the token."""
        body = _parsed(await request.body())
        if isinstance(body, JSONResponse):
            return body
        items = body if isinstance(body, list) else [body]
        if not items:
            return _problem(400, "body is an empty array: send at least one event")
        if len(items) > MAX_EVENTS_PER_REQUEST:
            return _problem(413, f"at most {MAX_EVENTS_PER_REQUEST} events per request")
        # A submitter is held to its site; an admin is not (site None).
        site = principal.site if principal.role is Role.submitter else None
        try:
            outcomes = await ingest.submit(items, actor=principal.actor, site=site)
        except OutOfSiteError as exc:
            if metrics is not None:
                metrics.out_of_site(len(items))
            return _out_of_site(exc)
        if metrics is not None:
            metrics.count(outcomes)
        counts = {
            s: sum(o.status == s for o in outcomes) for s in ("accepted", "duplicate", "rejected")
        }
        status = 200 if not counts["rejected"] else 422 if counts["rejected"] == len(items) else 207
        return JSONResponse(
            status_code=status, content={**counts, "results": [o.as_json() for o in outcomes]}
        )

    return api


#: What a client's X-Request-ID may be to be kept: a plain token, never free text in a log.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIds:
    """Give each HTTP request an id, bind it for the request's log lines, answer with it.

    The client's `X-Request-ID` is kept when it is 1-64 characters of `[A-Za-z0-9._:-]`;
    anything else (or none) is replaced by a new uuid4 hex, so a log line never carries
    what a client typed beyond a harmless token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with `request_id` bound; add the header to the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get("x-request-id", "")
        request_id = offered if _CLIENT_REQUEST_ID.fullmatch(offered) else uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def _add_audit_routes(
    api: FastAPI, audit: AuditExports, auditors: Callable[..., Principal]
) -> None:
    allowed = [Depends(auditors)]

    @api.post("/v1/audit/snapshot", dependencies=allowed, responses=_AUTH_RESPONSES)
    async def snapshot() -> dict[str, Any]:
        """Write a Parquet snapshot of the log under the data directory; describe it."""
        snapshot_id, directory = audit.create()
        reply = await audit.export(directory)
        for name, entry in reply["files"].items():
            entry["download"] = f"/v1/audit/snapshots/{snapshot_id}/{name}"
        return {"snapshot_id": snapshot_id, **reply}

    @api.get(
        "/v1/audit/snapshots/{snapshot_id}/{name}",
        response_model=None,
        dependencies=allowed,
        responses={**_AUTH_RESPONSES, 404: {"description": "No such snapshot file."}},
    )
    async def snapshot_file(snapshot_id: str, name: str) -> FileResponse | JSONResponse:
        """Download one file of a snapshot written by POST /v1/audit/snapshot."""
        path = audit.resolve(snapshot_id, name)
        if path is None:
            return _problem(404, f"no snapshot file {snapshot_id}/{name}")
        return FileResponse(path, media_type="application/vnd.apache.parquet", filename=name)


def _describe_submissions(api: FastAPI) -> None:
    components = openapi_doc.submission_components(MAX_EVENTS_PER_REQUEST)
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).update(components)
        return document

    # FastAPI's documented way to extend the generated document is to replace this method.
    api.openapi = openapi  # type: ignore[method-assign]


def _parsed(raw: bytes) -> object:
    """The JSON body, or a 400 saying why it is not one ingest reads."""
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        return _problem(400, f"body is nested deeper than {MAX_JSON_DEPTH} arrays or objects")
    except (ValueError, UnicodeDecodeError) as exc:
        return _problem(400, f"body is not valid JSON: {exc}")
    if _depth_exceeds(body, MAX_JSON_DEPTH):
        return _problem(400, f"body is nested deeper than {MAX_JSON_DEPTH} arrays or objects")
    return body


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object] = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _out_of_site(exc: OutOfSiteError) -> JSONResponse:
    body = {
        "error": f"this token may submit only for site {exc.site!r}; nothing was stored",
        "forbidden": [
            {"index": index, "field": error.field, "reason": error.reason}
            for index, error in exc.items
        ],
    }
    return JSONResponse(status_code=403, content=body)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": detail})
