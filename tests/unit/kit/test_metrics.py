"""kit/metrics.py: stall detection, the scrape guard and the health routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kit.auth import TokenStore
from kit.metrics import OK, Checks, Observability, ProgressWatch, install_routes, new_registry


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_work_standing_still_past_the_limit_is_stalled() -> None:
    """Waiting work whose position does not move for longer than the limit is reported."""
    clock = _Clock()
    watch = ProgressWatch(10.0, clock=clock)
    watch.check(waiting=5, position=100)

    clock.now = 11.0
    answer = watch.check(waiting=5, position=100)

    assert answer.startswith("stalled: 5 waiting")


def test_moving_position_or_fresh_work_is_not_stalled() -> None:
    """Progress restarts the clock; work first seen after an idle spell starts it afresh."""
    clock = _Clock()
    watch = ProgressWatch(10.0, clock=clock)
    watch.check(waiting=0, position=100)
    clock.now = 100.0
    first_sight = watch.check(waiting=5, position=100)
    clock.now = 109.0
    moved = watch.check(waiting=5, position=103)
    clock.now = 118.0

    still_within = watch.check(waiting=2, position=103)

    assert (first_sight, moved, still_within) == (OK, OK, OK)


def _client(tmp_path: Path, ready: Checks, *, scrape_token: str | None) -> TestClient:
    registry = new_registry()

    async def refresh() -> None:
        raise RuntimeError("the store is gone")  # a failed refresh must not fail the scrape

    async def checks() -> Checks:
        return ready

    tokens = TokenStore(tmp_path / "tokens.json", bootstrap_secret="admin-" + "x" * 20)
    api = FastAPI()
    install_routes(api, Observability(registry, refresh, checks, scrape_token), tokens=tokens)
    return TestClient(api)


def test_metrics_need_the_scrape_token_or_an_admin_and_survive_a_failed_refresh(
    tmp_path: Path,
) -> None:
    """401 bare or with a wrong token; 200 with the scrape token or the admin token."""
    client = _client(tmp_path, {"nats": OK}, scrape_token="scrape-" + "y" * 20)

    codes = [
        client.get("/metrics", headers=headers).status_code
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Bearer scrape-" + "y" * 20},
            {"Authorization": "Bearer admin-" + "x" * 20},
        )
    ]

    assert codes == [401, 401, 200, 200]
    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-" + "y" * 20})
    assert "process_cpu_seconds_total" in scraped.text


def test_readiness_is_503_naming_the_failed_check_while_liveness_stays_200(
    tmp_path: Path,
) -> None:
    """A stalled relay makes the service not ready; it is still alive."""
    client = _client(tmp_path, {"nats": OK, "relay": "stalled: 3 waiting"}, scrape_token=None)

    ready, live = client.get("/health/ready"), client.get("/health/live")

    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not_ready",
        "checks": {"nats": OK, "relay": "stalled: 3 waiting"},
    }
    assert live.status_code == 200
