"""The demo's duty officer: acknowledges alerts as they arrive, except two shown on purpose.

One U0 alert is acknowledged through the link in its email (printed, then followed as a
click would), one is left alone so that it escalates, and every other U0 alert is
acknowledged by "demo duty officer" so that the demo does not escalate a hundred alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from rich.console import Console
from rich.table import Table

from services.notify.core.errors import AckRejectedError

_LINK = re.compile(r"(http://\S+/v1/ack\?token=\S+)")
_POLL_S = 1.0


@dataclass
class DutyOfficer:
    """Watches open U0 alerts of the running notify service (in this process)."""

    notify: Any  # services.notify.service.NotifyService; typed loosely like the runner does
    mail_dir: Path | None
    console: Console
    escalating: UUID | None = None
    by_link: UUID | None = None
    link: str | None = None
    acknowledged: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Poll until stopped."""
        while not self._stop.is_set():
            await self._round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), _POLL_S)

    def stop(self) -> None:
        """Leave `run()` after the current round."""
        self._stop.set()

    async def _round(self) -> None:
        for alert in await self.notify.open_alerts():
            signal_id = alert.state.signal_id
            if self.escalating is None:
                self.escalating = signal_id
                note = f"demo: leaving U0 alert {signal_id} unacknowledged (it escalates)"
                self.console.print(note)
            elif signal_id == self.escalating:
                continue
            elif self.by_link is None or signal_id == self.by_link:
                await self._click_link(signal_id, alert.first.message_id)
            else:
                with contextlib.suppress(AckRejectedError):
                    await self.notify.acknowledger.by_person(
                        signal_id, by="demo duty officer", reason="demo: reviewed on arrival"
                    )
                    self.acknowledged += 1

    async def _click_link(self, signal_id: UUID, message_id: str) -> None:
        self.by_link = signal_id
        link = self._link_in(message_id)
        if link is None:
            return  # the email is not in the sink yet: next round
        self.link = link
        self.console.print(f"[bold]Acknowledgement link[/] for U0 alert {signal_id}:\n  {link}")
        async with httpx.AsyncClient(timeout=10) as client:
            page = await client.get(link)  # what a click shows: a confirmation form
            token = link.split("token=", 1)[1]
            done = await client.post(
                link.split("?", 1)[0], data={"token": token, "reason": "demo: clicked in email"}
            )
            again = await client.post(link.split("?", 1)[0], data={"token": token})
        self.console.print(
            f"demo: GET link -> {page.status_code} (form); POST -> {done.status_code} "
            f"(acknowledged); POST again -> {again.status_code} (a link works once)"
        )

    def _link_in(self, message_id: str) -> str | None:
        if self.mail_dir is None:
            return None
        name = message_id.strip("<>")
        for path in self.mail_dir.glob(f"*{name}*.eml"):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            body = message.get_body(("plain",))
            found = _LINK.search(body.get_content() if body is not None else "")
            if found:
                return found.group(1)
        return None


def log_table(title: str, entries: list[dict[str, Any]]) -> Table:
    """The delivery log of one signal as a table."""
    table = Table(title=title)
    for column in ("seq", "at (UTC)", "event", "role / by", "address", "try", "detail"):
        table.add_column(column)
    for e in entries:
        who = e.get("role") or e.get("by") or ",".join(e.get("to_roles", []))
        detail = (
            e.get("smtp_reply")
            or e.get("error")
            or e.get("reason")
            or (f"level {e['level']}" if "level" in e else "")
        )
        table.add_row(
            str(e["seq"]), e["at"][11:23], e["event_type"], who, e.get("address", ""),
            str(e.get("attempt", "")), str(detail),
        )  # fmt: skip
    return table
