"""The log's head, published outside its file on a JetStream stream of its own (adapters).

Why: the hash chain shows an edit only to someone holding an earlier hash. A log edited and
re-hashed from the edit to its end verifies on its own; it no longer agrees with the heads
ingest published while it ran. The stream denies deletes and purges (kit.jetstream), and
its subjects lie outside `<ns>.ingest.>`, so the facts stream and its consumers never see
them. `safetymon audit export` copies these heads into the bundle and `audit verify`
compares them with the exported chain; ingest compares the latest one with its file at start.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import nats.errors
import nats.js.errors

from kit.jetstream import ensure_stream
from schemas import DUPLICATE_WINDOW_SECONDS
from services.ingest.core.chain import LogHead
from services.ingest.core.errors import TransientError

if TYPE_CHECKING:
    from nats.js import JetStreamContext

HEADS_FILE: Final = "ingest_heads.jsonl"


def anchor_stream(namespace: str) -> str:
    """The stream holding the published heads, e.g. SAFETYMON_ANCHORS."""
    return f"{namespace.upper()}_ANCHORS"


def anchor_subject(namespace: str) -> str:
    """The subject ingest publishes its head on (outside the facts stream's `<ns>.ingest.>`)."""
    return f"{namespace}.anchor.ingest.head"


def head_message(head: LogHead, published_at: datetime) -> bytes:
    """The published form: canonical JSON of seq, hash and when it was published."""
    body = {"hash": head.hash, "published_at": published_at.isoformat(), "seq": head.seq}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


class JetStreamHeadAnchor:
    """Publish the head (Nats-Msg-Id = seq and hash) and read the latest one back."""

    def __init__(self, js: JetStreamContext, namespace: str) -> None:
        self._js = js
        self._stream = anchor_stream(namespace)
        self._subject = anchor_subject(namespace)

    async def ensure(self) -> None:
        """Create the anchors stream if it is missing (deletes and purges denied)."""
        await ensure_stream(
            self._js,
            name=self._stream,
            subjects=f"{self._subject.split('.')[0]}.anchor.>",
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )

    async def latest(self) -> LogHead | None:
        """The last head published, or None when none was."""
        try:
            raw = await self._js.get_last_msg(self._stream, self._subject)
        except nats.js.errors.NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise TransientError(f"reading the published head: {type(exc).__name__}") from exc
        body: dict[str, Any] = json.loads(raw.data or b"{}")
        return LogHead(int(body["seq"]), str(body["hash"]))

    async def publish(self, head: LogHead, published_at: datetime) -> None:
        """Publish the head; returns once JetStream stored it."""
        headers = {"Nats-Msg-Id": f"ingest-head:{head.seq}:{head.hash}"}
        try:
            await self._js.publish(
                self._subject, head_message(head, published_at), stream=self._stream,
                headers=headers, timeout=5,
            )  # fmt: skip
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise TransientError(f"publishing the head: {type(exc).__name__}") from exc


async def read_heads(js: JetStreamContext, namespace: str, *, wait: float = 10.0) -> list[bytes]:
    """Every head published for this namespace, oldest first (the exact message bytes)."""
    stream = anchor_stream(namespace)
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        return []
    last = info.state.last_seq
    if not info.state.messages:
        return []
    subscription = await js.subscribe(anchor_subject(namespace), ordered_consumer=True)
    heads: list[bytes] = []
    try:
        while True:
            message = await asyncio.wait_for(subscription.next_msg(timeout=wait), wait)
            heads.append(message.data)
            if message.metadata.sequence.stream >= last:
                return heads
    finally:
        await subscription.unsubscribe()
