"""NATS request/reply endpoints of notify (adapters layer): acknowledge, read the delivery log.

The CLI reaches the running service this way, so it needs no HTTP port and never opens the
notify DuckDB file (one writer per file). Every request gets a JSON reply; a refusal says why.

Access: these subjects carry no bearer token. The boundary is the NATS server's
own authorisation: the services and operators connect with configured credentials
(SAFETYMON_NATS_USER/PASSWORD, TOKEN, CREDS_FILE or NKEY_SEED_FILE, kit/nats_security.py),
and a deployment grants publish on `<ns>.notify.ack` and `<ns>.notify.log` only to the
accounts of the people allowed to acknowledge or read the delivery log (the safety office),
never to site or DSMB accounts. An acknowledgement here is recorded with the `by` the
requester gives, and the audit trail keeps it; the HTTP route attributes it to a token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import ValidationError

from services.notify.adapters.http_api import AckRequest, ack_json, status_of
from services.notify.app.alerts import Acknowledger
from services.notify.core.errors import AckRejectedError
from services.notify.ports import AlertStore, Logger

if TYPE_CHECKING:
    from nats.aio.msg import Msg

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def ack_subject(namespace: str) -> str:
    """Subject of `safetymon ack`."""
    return f"{namespace}.notify.ack"


def log_subject(namespace: str) -> str:
    """Subject of `safetymon notifications`."""
    return f"{namespace}.notify.log"


def state_subject(namespace: str) -> str:
    """Subject of the read-only state request (unsent count, open U0 alerts)."""
    return f"{namespace}.notify.state"


def flush_digests_subject(namespace: str) -> str:
    """Subject of the request that sends the held digests now (`flush_digests`)."""
    return f"{namespace}.notify.digests.flush"


def replying(
    answer: Callable[[], Awaitable[Mapping[str, object]]], log: Logger
) -> Callable[[Msg], Awaitable[None]]:
    """A callback answering every request with `answer()` (state, flush: no arguments)."""

    async def respond(msg: Msg) -> None:
        reply: Mapping[str, object]
        try:
            reply = await answer()
        except Exception as exc:  # reported to the requester and logged, never swallowed
            log.error("notify_request_failed", error=type(exc).__name__, exc_info=True)
            reply = {"error": type(exc).__name__, "status": 500}
        if msg.reply:
            await msg.respond(json.dumps(reply).encode("utf-8"))

    return respond


def build_responders(
    acknowledger: Acknowledger, store: AlertStore, *, log: Logger
) -> dict[str, Callable[[Msg], Awaitable[None]]]:
    """Callbacks by purpose ("ack", "log"), to subscribe under the subjects above."""

    async def ack(request: dict[str, Any]) -> dict[str, Any]:
        signal_id = UUID(str(request.get("signal_id")))
        body = AckRequest.model_validate({k: request.get(k) for k in ("by", "reason")})
        done = await acknowledger.by_person(signal_id, by=body.by, reason=body.reason)
        return {"acknowledgement": ack_json(done)}

    async def delivery_log(request: dict[str, Any]) -> dict[str, Any]:
        signal = request.get("signal_id")
        rows = await store.delivery_log(
            signal_id=UUID(str(signal)) if signal else None,
            participant_id=request.get("participant_id") or None,
        )
        return {"entries": rows}

    return {"ack": _responder(ack, log), "log": _responder(delivery_log, log)}


def _responder(handler: Handler, log: Logger) -> Callable[[Msg], Awaitable[None]]:
    async def respond(msg: Msg) -> None:
        try:
            request = json.loads(msg.data or b"{}")
            if not isinstance(request, dict):
                raise TypeError("the request must be a JSON object")  # noqa: TRY301 - one reply path
            reply = await handler(request)
        except AckRejectedError as exc:
            reply = {"error": str(exc), "status": status_of(exc)}
        except (ValueError, TypeError, ValidationError) as exc:  # ValidationError is a ValueError
            reply = {"error": f"bad request: {str(exc)[:300]}", "status": 400}
        except Exception as exc:  # reported to the requester and logged, never swallowed
            log.error("notify_request_failed", error=type(exc).__name__, exc_info=True)
            reply = {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "status": 500}
        if msg.reply:
            await msg.respond(json.dumps(reply, default=str).encode("utf-8"))

    return respond
