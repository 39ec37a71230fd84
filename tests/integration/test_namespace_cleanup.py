"""The test namespace fixture leaves no stream behind, the ingest head anchors included."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import nats
import nats.js.errors
import pytest

from schemas import Subjects
from services.ingest.adapters.head_anchor import JetStreamHeadAnchor, anchor_stream
from services.ingest.core.chain import LogHead
from tests.conftest import delete_namespace_streams

pytestmark = pytest.mark.integration


async def test_every_stream_of_the_namespace_is_deleted(nats_url: str) -> None:
    ns = f"t{uuid4().hex[:12]}"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    subjects = Subjects(ns)
    await js.add_stream(name=subjects.facts_stream, subjects=[subjects.facts_filter])
    anchor = JetStreamHeadAnchor(js, ns)
    await anchor.ensure()
    await anchor.publish(LogHead(1, "0" * 64), datetime.now(UTC))

    await delete_namespace_streams(nats_url, ns)

    for stream in (subjects.facts_stream, anchor_stream(ns)):
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.stream_info(stream)
    await nc.close()
