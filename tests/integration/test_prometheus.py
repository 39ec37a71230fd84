"""A real Prometheus scrapes the three services while an SAE goes through the pipeline.

Prometheus is Debian's `prometheus` (make test installs it, like Chromium); it scrapes
ingest's and notify's /metrics and rules' metrics port every second with the scrape-only
token, and the test asks its HTTP API what an operator's dashboard asks: the alert latency
p99 and the accepted-facts counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from safetymon.runner import Stack
from tests.conftest import SmtpServer, free_port
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, enrolment, sae, unique
from tools.stack import start_stack

pytestmark = pytest.mark.integration

PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
P99_LATENCY = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(safetymon_notify_alert_latency_seconds_bucket{urgency="U0"}[1m])))'
)
ACCEPTED = "sum(safetymon_ingest_facts_accepted_total)"
MEAN_LATENCY = (
    'sum(safetymon_notify_alert_latency_seconds_sum{urgency="U0"}) '
    '/ sum(safetymon_notify_alert_latency_seconds_count{urgency="U0"})'
)


@pytest.fixture
async def metered_stack(
    stack_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Stack, str, int]]:
    """The in-process stack with rules' metrics port on and a scrape-only token."""
    token = "scrape-" + secrets.token_urlsafe(16)
    rules_port = free_port()
    monkeypatch.setenv("SAFETYMON_METRICS_TOKEN", token)
    monkeypatch.setenv("SAFETYMON_METRICS_PORT", str(rules_port))
    running = await start_stack(data_dir=stack_environment, http_port=0)
    yield running, token, rules_port
    await running.stop()


@contextlib.asynccontextmanager
async def prometheus(tmp_path: Path, targets: dict[str, int], token: str) -> AsyncIterator[str]:
    """Run a real Prometheus scraping `targets` (job -> port) each second; yield its URL."""
    jobs = "".join(
        f"""
  - job_name: {job}
    authorization: {{type: Bearer, credentials: "{token}"}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
        for job, port in targets.items()
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:{jobs}")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            await _until(lambda: _ready(client), what="prometheus ready")
        yield url
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)


async def _ready(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/-/ready")).status_code == 200
    except httpx.TransportError:
        return False


async def _until(check: Any, *, what: str, timeout: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.5)
    raise TimeoutError(what)


async def _query(client: httpx.AsyncClient, promql: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/query", params={"query": promql})
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def _value(client: httpx.AsyncClient, promql: str) -> float | None:
    """The single sample's value, or None while there is none (or it is NaN)."""
    result = await _query(client, promql)
    if not result or result[0]["value"][1] in {"NaN", "+Inf"}:
        return None
    return float(result[0]["value"][1])


async def test_prometheus_sees_the_alert_latency_and_the_accepted_facts(
    metered_stack: tuple[Stack, str, int], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """An SAE's U0 emails show in the latency histogram p99; both facts in the counter."""
    stack, token, rules_port = metered_stack
    notify_port = stack.services["notify"].http_port  # type: ignore[attr-defined]
    targets = {"ingest": stack.http_port or 0, "rules": rules_port, "notify": notify_port}
    participant = unique("PROM")

    async with (
        prometheus(tmp_path, targets, token) as url,
        httpx.AsyncClient(base_url=url) as prom,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH) as api,
    ):
        await _until(lambda: _all_up(prom), what="every target up")
        await api.post("/v1/events", json=enrolment(participant_id=participant, site_id="S01"))
        await api.post("/v1/events", json=sae(participant_id=participant, site_id="S01"))
        await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S01"]))
        await stack.settled(30)
        p99 = await _until(lambda: _value(prom, P99_LATENCY), what="alert latency p99")
        accepted = await _until(lambda: _at_least(prom, ACCEPTED, 2), what="2 facts counted")
        mean = await _value(prom, MEAN_LATENCY)
        # Each target is scraped every second, each on its own: poll until rules' is in.
        signals = await _until(
            lambda: _at_least(prom, "sum(safetymon_rules_signals_total)", 1), what="signals"
        )
        lag = await _until(lambda: _both_durables(prom), what="consumer lag of both durables")

    print(f"\nPrometheus {P99_LATENCY} = {p99:.4f} s (mean of the samples {mean} s)")
    print(f"Prometheus {ACCEPTED} = {accepted:g}")
    assert 0 < p99 <= 10.0
    assert accepted == 2
    assert signals >= 1
    assert {s["metric"]["durable"] for s in lag} == {"rules-evaluator", "notify-router"}


async def _all_up(prom: httpx.AsyncClient) -> bool:
    result = await _query(prom, "up")
    return len(result) == 3 and all(r["value"][1] == "1" for r in result)


async def _both_durables(prom: httpx.AsyncClient) -> list[dict[str, Any]] | None:
    lag = await _query(prom, "safetymon_consumer_pending")
    return lag if len({s["metric"]["durable"] for s in lag}) == 2 else None


async def _at_least(prom: httpx.AsyncClient, promql: str, wanted: float) -> float | None:
    value = await _value(prom, promql)
    return value if value is not None and value >= wanted else None


async def test_probes_and_metrics_access(metered_stack: tuple[Stack, str, int]) -> None:
    """Probes answer anyone; /metrics wants the scrape token or an admin, never a bare call."""
    stack, token, rules_port = metered_stack
    notify_port = stack.services["notify"].http_port  # type: ignore[attr-defined]
    scrape = {"Authorization": f"Bearer {token}"}
    wrong_token = {"Authorization": "Bearer not-the-token"}

    async with httpx.AsyncClient() as client:
        answers = {}
        for name, port in (("ingest", stack.http_port), ("notify", notify_port),
                           ("rules", rules_port)):  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            answers[name] = (
                (await client.get(f"{base}/health/live")).status_code,
                (await client.get(f"{base}/health/ready")).json(),
                (await client.get(f"{base}/metrics")).status_code,
                (await client.get(f"{base}/metrics", headers=scrape)).status_code,
                (await client.get(f"{base}/metrics", headers=wrong_token)).status_code,
            )
        legacy = (await client.get(f"http://127.0.0.1:{stack.http_port}/health")).status_code
        admin = await client.get(f"http://127.0.0.1:{notify_port}/metrics", headers=AUTH)

    for name, (live, ready, bare, scraped, wrong) in answers.items():
        assert live == 200, name
        assert ready["status"] == "ready", (name, ready)
        assert (bare, scraped, wrong) == (401, 200, 401), name
    assert legacy == 200
    assert admin.status_code == 200
    assert "safetymon_notify_oldest_unacknowledged_u0_seconds 0.0" in admin.text
