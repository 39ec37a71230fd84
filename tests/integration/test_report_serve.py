"""`safetymon report serve`: the command that serves the DSMB report API the emails link to.

Started as an operator starts it (its own process, a real socket), with a token file: the
DSMB token is served, no token is refused, another role is refused, and the docs are off.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kit.auth import Role, TokenStore
from tests.conftest import free_port

pytestmark = pytest.mark.integration

SAFETYMON = str(Path(sys.executable).parent / "safetymon")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    tokens = TokenStore(tmp_path / "tokens.json")
    secrets = {role: tokens.create(f"t-{role}", Role(role), site)[1]
               for role, site in (("dsmb", None), ("investigator", "S01"))}  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [SAFETYMON, "report", "serve", "--root", str(tmp_path / "reports"), "--port", str(port),
         "--tokens-file", str(tmp_path / "tokens.json")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            if process.poll() is not None:
                raise AssertionError((process.stdout.read() if process.stdout else b"").decode())
            try:
                httpx.get(f"{base}/v1/reports", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base, secrets
    finally:
        process.terminate()
        process.wait(10)


def test_the_report_api_is_served_to_the_dsmb_only(served: tuple[str, dict[str, str]]) -> None:
    base, secrets = served

    anonymous = httpx.get(f"{base}/v1/reports")
    investigator = httpx.get(
        f"{base}/v1/reports", headers={"Authorization": f"Bearer {secrets['investigator']}"}
    )
    dsmb = httpx.get(f"{base}/v1/reports", headers={"Authorization": f"Bearer {secrets['dsmb']}"})
    docs = httpx.get(f"{base}/docs")

    assert anonymous.status_code == 401
    assert investigator.status_code == 403
    assert dsmb.status_code == 200
    assert dsmb.json() == []
    assert docs.status_code == 404
