"""Acknowledgements through notify's HTTP API, as the signed-in person (adapters layer).

Notify stays the only writer of its file: the console asks POST /v1/signals/{id}/ack with
the viewer's own bearer token, so notify applies its own authority check (role the alert
was routed to, own site) and records the same audit event and escalation stop as for any
token holder, attributed to `token:<name>`.
"""

from __future__ import annotations

import httpx

from services.console.ports import AckOutcome

_MESSAGES = {
    200: "Acknowledged: escalation stops.",
    403: "Your role may not acknowledge this alert.",
    404: "Not found.",
    409: "This alert was already acknowledged.",
    410: "This alert cannot be acknowledged any more.",
    422: "The reason is missing or too long.",
}


class NotifyAcknowledgements:
    """POSTs to notify's acknowledgement route; refusals come back as outcomes."""

    def __init__(self, base_url: str | None, *, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/") if base_url else None
        self._timeout = timeout

    async def acknowledge(
        self, signal_id: str, *, token: str, reason: str, assign_to: str | None = None
    ) -> AckOutcome:
        """Ask notify; a network failure is a 503 outcome."""
        if self._base is None:
            return AckOutcome(503, "Acknowledging is not configured (notify_url is unset).")
        url = f"{self._base}/v1/signals/{signal_id}/ack"
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                body = {"reason": reason, "channel": "console"}
                if assign_to:
                    body["assign_to"] = assign_to
                response = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            return AckOutcome(503, f"Notify cannot be reached ({type(exc).__name__}).")
        status = response.status_code
        return AckOutcome(status, _MESSAGES.get(status, f"Notify answered {status}."))
