"""The quick start: `make demo` (`python -m tools demo`) on embedded servers (NATS, SMTP sink)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

# The subprocess's own 300 s, not the suite's 120 s: the demo alone takes ~70 s here, and twice
# that when the machine is shared.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: The developer entry, as `make demo` runs it (from any directory: the project is installed).
DEMO = (sys.executable, "-m", "tools", "demo")


def test_demo_runs_the_feed_through_embedded_nats_and_writes_the_emails(tmp_path: Path) -> None:
    """With no NATS or SMTP configured, the demo starts its own and prints where emails are."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYMON_")}
    env["SAFETYMON_LOG_FORMAT"] = "console"

    result = subprocess.run(
        [*DEMO, "--participants", "24", "--seed", "11"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    emails = sorted((tmp_path / "data" / "mail").glob("*.eml"))
    sent = re.search(r"Emails \((\d+): \{'sent': (\d+)\}\)", output)
    assert sent is not None, output[-3000:]
    assert int(sent.group(1)) == int(sent.group(2)) == len(emails) > 0
    assert "SAE-01" in output
    subjects = [
        message_from_bytes(p.read_bytes(), policy=default_policy)["Subject"] for p in emails
    ]
    assert any(s.startswith("[U0 SAE]") for s in subjects)
    for path in emails:
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        # A same-event reply rides on its page's thread (one page per person per fact).
        assert message["Subject"][:4] in {"[U0 ", "[U1 ", "[U2 "} or message["Subject"].startswith(
            "[SAME EVENT"
        )
        assert re.search(r"\bP-\d{3}\b", message["Subject"])
    assert (tmp_path / "data" / "nats" / "nats-server.conf").exists()
    console = re.search(r"Open the console at (http://127\.0\.0\.1:\d+)/", output)
    assert console is not None, output[-3000:]
    # Every signal email links to its alert page on that console.
    bodies = [p.read_text(encoding="utf-8", errors="replace") for p in emails]
    assert any(f"{console.group(1)}/alerts/" in body for body in bodies)
