"""Schemathesis against the running ingest service's own OpenAPI document.

Every operation is called with generated requests (valid and invalid bodies, paths and
headers) as an admin. For each call: no 5xx, a status code and content type the document
declares, and the log's length changes by exactly the events the answer says were accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import nats
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    status_code_conformance,
)

from schemas import Subjects
from services.ingest.config import Settings
from services.ingest.main import build_app
from services.ingest.service import IngestService
from tests.conftest import NATS_URL
from tests.credentials import AUTH, TEST_TOKEN
from tests.fuzz import counts
from tests.fuzz.strategies import EXAMPLES

#: The full profile runs for minutes, past the suite's per-test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(EXAMPLES["timeout_s"])]


@dataclass
class LiveIngest:
    """An ingest service running on its own event loop in a background thread."""

    service: IngestService
    loop: asyncio.AbstractEventLoop
    client: httpx.Client
    session: requests.Session

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.http_port}"

    def head(self) -> int:
        return int(self.client.get(f"{self.url}/v1/log/head").json()["seq"])


@pytest.fixture(scope="module")
def live_ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIngest]:
    namespace = f"fz{uuid4().hex[:10]}"
    settings_ = Settings(
        data_dir=Path(tmp_path_factory.mktemp("fuzz-http")),
        nats_url=NATS_URL,
        namespace=namespace,
        http_port=0,
        bootstrap_token=SecretStr(TEST_TOKEN),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-ingest", daemon=True)
    thread.start()
    service = build_app(settings_)
    asyncio.run_coroutine_threadsafe(service.start(), loop).result(30)
    try:
        with httpx.Client(headers=AUTH, timeout=60) as client, requests.Session() as session:
            yield LiveIngest(service, loop, client, session)
    finally:
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(60)
        asyncio.run_coroutine_threadsafe(_delete_stream(namespace), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _delete_stream(namespace: str) -> None:
    nc = await nats.connect(NATS_URL)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await nc.jetstream().delete_stream(Subjects(namespace).facts_stream)
    await nc.close()


@pytest.fixture(scope="module")
def ingest_schema(live_ingest: LiveIngest) -> schemathesis.BaseSchema:
    """The document the running service serves (to a token), pointed at that service."""
    document = httpx.get(f"{live_ingest.url}/openapi.json", headers=AUTH).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=live_ingest.url)
    return schema


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


# schemathesis.pytest.from_fixture fails on pytest 9 ('Function' has no '_nodeid'), so the
# operations are read from the live document here and each gets its own Hypothesis run.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_generated_requests_never_crash_the_api_or_half_apply(
    ingest_schema: schemathesis.BaseSchema, live_ingest: LiveIngest, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in ingest_schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /v1/events", "GET /v1/log/head"}

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _negatable(operation):
            continue  # nothing to make invalid: the positive run covers it
        _fuzz(operation, mode, live_ingest)


def _negatable(operation: schemathesis.APIOperation) -> bool:
    # The Authorization header is the only declared header, and every call sends a real one.
    return bool(operation.path_parameters or operation.query or operation.body)


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, live: LiveIngest) -> None:
    @settings(max_examples=EXAMPLES["http"], deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        kind = f"HTTP {mode.value} {operation.label}"
        counts.add(kind, items=len(case.body) if isinstance(case.body, list) else 1)
        before = live.head()

        response = case.call(session=live.session, headers=AUTH, timeout=60)

        case.validate_response(response, checks=CHECKS)
        accepted = 0
        if operation.label == "POST /v1/events" and response.status_code in (200, 207):
            accepted = int(response.json()["accepted"])
        assert live.head() == before + accepted
        counts.accepted(kind, accepted)

    run()
