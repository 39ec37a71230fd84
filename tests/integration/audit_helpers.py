"""Helpers of the audit integration tests: post facts, run `safetymon audit` as a process."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from safetymon.runner import Stack
from tests.credentials import AUTH


async def post(stack: Stack, items: list[dict[str, Any]]) -> None:
    """Submit facts to the running ingest API in chunks; every one must be accepted."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH, timeout=60
    ) as client:
        for start in range(0, len(items), 500):
            response = await client.post("/v1/events", json=items[start : start + 500])
            assert response.status_code == 200, response.text


async def audit_live(
    stack: Stack, nats_url: str, namespace: str, command: str, *args: str
) -> tuple[int, dict[str, Any], str]:
    """Run `safetymon audit COMMAND --live --json` in its own process, as an auditor would.

    A separate process keeps the in-process services' log lines out of the JSON it prints.
    """
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "safetymon"),
        "audit", command, "--live", "--ingest-url", f"http://127.0.0.1:{stack.http_port}",
        "--nats-url", nats_url, "--namespace", namespace, "--json", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    code = process.returncode if process.returncode is not None else -1
    document: dict[str, Any] = json.loads(out) if out.strip() else {}
    return code, document, err.decode()
