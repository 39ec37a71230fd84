"""Tracing one alert: a request id leads to the event id, which every service logs and sends.

The whole pipeline runs in this process (real NATS, real SMTP, real DuckDB files) with the
structlog JSON renderer at DEBUG, as a deployment with SAFETYMON_LOG_LEVEL=DEBUG logs.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
import structlog

from kit.jetstream import CORRELATION_HEADER
from kit.logging import configure_logging
from safetymon.runner import Stack
from schemas import Subjects
from tests.conftest import SmtpServer
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, enrolment, sae, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def json_log() -> io.StringIO:
    """kit/logging.py's JSON rendering at DEBUG, written to a buffer the test reads."""
    buffer = io.StringIO()
    configure_logging("json", level="DEBUG")
    # Only the output changes: the processors (contextvars, level, renderer) stay ours. A
    # buffer of our own, not capsys: services bind loggers when the stack starts, and
    # pytest swaps the captured stream between setup and call.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buffer))
    return buffer


@pytest.fixture
def stack_environment(stack_environment: Path, json_log: io.StringIO) -> Path:
    """The shared environment; logging is configured before the stack starts."""
    return stack_environment


def _log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    lines = [line for line in buffer.getvalue().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def _named(lines: list[dict[str, Any]], event: str, **fields: object) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
    ]


async def _stream_messages(stack: Stack, stream: str) -> list[tuple[dict[str, str], bytes]]:
    """(headers, body) of every message on one of the namespace's streams, read back by seq."""
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(stream)).state
        found = []
        for seq in range(state.first_seq, state.last_seq + 1):
            try:
                raw = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                continue
            found.append((dict(raw.headers or {}), raw.data or b""))
        return found
    finally:
        await nc.close()


async def test_one_id_finds_an_sae_in_every_service_its_messages_and_its_emails(
    stack: Stack,
    smtp_server: SmtpServer,
    namespace: str,
    json_log: io.StringIO,
) -> None:
    """The request id leads to the event id; logs, NATS headers and emails all carry it."""
    participant = unique("TRACE")
    recipients = EXPECTED_PER_SITE["S01"]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
    ) as client:
        await client.post("/v1/events", json=enrolment(participant_id=participant, site_id="S01"))
        response = await client.post(
            "/v1/events",
            json=sae(participant_id=participant, site_id="S01"),
            headers={"X-Request-ID": "trace-123"},
        )
    mails = await smtp_server.recorder.wait_for(len(recipients))
    await stack.settled(30)
    subjects = Subjects(namespace)
    facts = await _stream_messages(stack, subjects.facts_stream)
    signals = await _stream_messages(stack, subjects.signals_stream)
    lines = _log_lines(json_log)

    assert response.headers["X-Request-ID"] == "trace-123"
    event_id = response.json()["results"][0]["event_id"]
    accepted = _named(lines, "fact_accepted", request_id="trace-123")
    assert [line["correlation_id"] for line in accepted] == [event_id]
    assert accepted[0]["level"] == "debug"
    assert _named(lines, "facts_appended", request_id="trace-123")
    assert _named(lines, "signal_raised", correlation_id=event_id, rule_id="SAE-01")
    assert _named(lines, "notifications_intended", correlation_id=event_id)
    sent = _named(lines, "notification_sent", correlation_id=event_id)
    # The report is a bleed: SAE-01 pages and VB-01 reaches the same people on that page
    # (one page per person per fact), each notification logged as sent.
    assert len(sent) == 2 * len(recipients)
    assert {str(mail.message["X-Safetymon-Correlation-Id"]) for mail in mails} == {event_id}
    fact_headers = [headers for headers, _ in facts if headers.get("Nats-Msg-Id") == event_id]
    assert [headers.get(CORRELATION_HEADER) for headers in fact_headers] == [event_id]
    caused = [h for h, body in signals if json.loads(body).get("causation_id") == event_id]
    assert caused
    assert {headers.get(CORRELATION_HEADER) for headers in caused} == {event_id}


async def test_a_request_id_that_is_not_a_plain_token_is_replaced_by_a_new_one(
    stack: Stack, json_log: io.StringIO
) -> None:
    """Only 1-64 characters of [A-Za-z0-9._:-] are kept: client text never reaches a log."""
    offered = ["has spaces", "x" * 65, "semi;colon", ""]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
    ) as client:
        kept = await client.get("/v1/log/head", headers={"X-Request-ID": "a.B_c:9-" + "z" * 56})
        replaced = [
            await client.get("/v1/log/head", headers={"X-Request-ID": value}) for value in offered
        ]
        missing = await client.get("/health")
        refused = await client.post(
            "/v1/events", json=[], headers={"X-Request-ID": "empty-batch-1"}
        )

    assert kept.headers["X-Request-ID"] == "a.B_c:9-" + "z" * 56
    fresh = [r.headers["X-Request-ID"] for r in [*replaced, missing]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in fresh), fresh
    assert len(set(fresh)) == len(fresh)
    assert (refused.status_code, refused.headers["X-Request-ID"]) == (400, "empty-batch-1")
    logged = json.dumps(_log_lines(json_log))
    assert "has spaces" not in logged
    assert "semi;colon" not in logged
