"""`safetymon up` supervises the three services as child processes (real NATS and SMTP).

A child killed with SIGKILL is restarted (new pid) and the pipeline still delivers an SAE;
SIGINT to the supervisor stops every child within seconds. The supervisor's loop is also
exercised on tiny Python children: restart with backoff, give up, SIGKILL at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from safetymon.supervisor import ChildSpec, RestartPolicy, Supervisor
from tests.conftest import SmtpServer, free_port
from tests.credentials import AUTH, TEST_TOKEN
from tests.factories import EXPECTED_PER_SITE, ROUTING, sae, unique

pytestmark = pytest.mark.e2e

SAFETYMON = str(Path(sys.executable).parent / "safetymon")
#: The developer `up`: the same supervisor on an embedded nats-server (tools/cli.py).
DEV_UP = (sys.executable, "-m", "tools", "up")
SERVICES = ("ingest", "rules", "notify", "console")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def test_a_child_that_keeps_dying_is_restarted_with_backoff_then_given_up() -> None:
    """Each exit is logged and followed by a doubling delay; the fourth death gives up."""
    out = io.BytesIO()
    child = ChildSpec("flaky", _python("print('hello'); raise SystemExit(3)"), os.environ)
    policy = RestartPolicy(first_delay=0.05, max_delay=0.1, give_up_after=3)
    supervisor = Supervisor([child], policy=policy, out=out)

    with capture_logs() as logs:
        await supervisor.start()
        given_up = await asyncio.wait_for(supervisor.wait_failed(), 30)
        await supervisor.stop()

    restarts = [e for e in logs if e["event"] == "service_restarting"]
    assert given_up == "flaky"
    assert [(e["exit_code"], e["delay_s"]) for e in restarts] == [(3, 0.05), (3, 0.1), (3, 0.1)]
    assert [e["event"] for e in logs].count("service_given_up") == 1
    assert out.getvalue() == b"[flaky] hello\n" * 4


async def test_stop_kills_a_child_that_ignores_sigterm_and_does_not_restart_it() -> None:
    """SIGTERM first; a child still running after the grace period gets SIGKILL."""
    out = io.BytesIO()
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    supervisor = Supervisor([ChildSpec("stubborn", _python(code), os.environ)], grace=0.5, out=out)
    await supervisor.start()
    pid = supervisor.pids["stubborn"]
    deadline = time.monotonic() + 20
    while b"ready" not in out.getvalue() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)

    started = time.monotonic()
    with capture_logs() as logs:
        await supervisor.stop()

    assert time.monotonic() - started < 3.0
    assert not _alive(pid)
    assert supervisor.pids == {}
    assert [e["event"] for e in logs] == ["service_killed"]


@dataclass
class Up:
    """A running `safetymon up` and where its output goes."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    http_port: int

    def started(self) -> list[tuple[str, int]]:
        """(service, pid) of every child start the supervisor logged, in order."""
        found = []
        for line in self.stderr.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"service_started"' in line:
                event = json.loads(line)
                found.append((event["service"], int(event["pid"])))
        return found

    def wait_started(self, count: int, timeout: float = 60.0) -> list[tuple[str, int]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(found := self.started()) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"supervisor started {self.started()}, expected {count} starts")


def _environment(tmp_path: Path, smtp_server: SmtpServer) -> dict[str, str]:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SAFETYMON_NATS_")},
        "SAFETYMON_DATA_DIR": str(tmp_path / "data"),
        "SAFETYMON_SMTP_HOST": smtp_server.host,
        "SAFETYMON_SMTP_PORT": str(smtp_server.port),
        "SAFETYMON_HTTP_PORT": str(free_port()),
        "SAFETYMON_ROUTING": str(routing),
        "SAFETYMON_LOG_FORMAT": "json",
        "SAFETYMON_BOOTSTRAP_TOKEN": TEST_TOKEN,
    }


@contextlib.contextmanager
def _safetymon_up(
    tmp_path: Path, env: dict[str, str], argv: tuple[str, ...] = (SAFETYMON, "up")
) -> Iterator[Up]:
    stdout, stderr = tmp_path / "up.out", tmp_path / "up.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
    running = Up(process, stdout, stderr, int(env["SAFETYMON_HTTP_PORT"]))
    try:
        yield running
    finally:
        if process.poll() is None:  # the test failed before stopping it
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()  # the children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
                process.wait(5)


def test_up_without_configured_servers_names_them_and_points_at_the_dev_command(
    tmp_path: Path,
) -> None:
    """The runtime starts no server of its own: it says what to set, and where the demo is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYMON_")}
    env["SAFETYMON_DATA_DIR"] = str(tmp_path / "data")

    done = subprocess.run(
        [SAFETYMON, "up"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    said = " ".join(done.stderr.split())  # the terminal width may wrap the message
    assert done.returncode == 2, said
    for needed in ("SAFETYMON_NATS_URL", "SAFETYMON_SMTP_HOST", "SAFETYMON_ROUTING", "make demo"):
        assert needed in said
    assert not (tmp_path / "data").exists()


@pytest.fixture
def up(tmp_path: Path, nats_url: str, namespace: str, smtp_server: SmtpServer) -> Iterator[Up]:
    env = _environment(tmp_path, smtp_server)
    env.update(SAFETYMON_NATS_URL=nats_url, SAFETYMON_NAMESPACE=namespace)
    with _safetymon_up(tmp_path, env) as running:
        yield running


def _wait_http(port: int, timeout: float = 60.0) -> None:
    # A start-up wait, not a speed check: three interpreters importing on a busy 2-core
    # machine take a while.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"ingest did not answer on port {port}")


async def test_killed_child_is_restarted_and_sigint_stops_every_child(
    up: Up, smtp_server: SmtpServer
) -> None:
    """kill -9 notify: a new notify process delivers the SAE; SIGINT ends all within seconds."""
    first = dict(up.wait_started(len(SERVICES)))
    _wait_http(up.http_port)
    participant = unique("E2E")

    os.kill(first["notify"], signal.SIGKILL)
    starts = up.wait_started(len(SERVICES) + 1)
    response = httpx.post(
        f"http://127.0.0.1:{up.http_port}/v1/events",
        json=[sae(participant_id=participant, site_id="S01")],
        headers=AUTH,
        timeout=30,
    )
    mails = await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S01"]), timeout=90)
    up.process.send_signal(signal.SIGINT)
    stopping = time.monotonic()
    code = up.process.wait(30)
    stopped_after = time.monotonic() - stopping

    assert response.json()["accepted"] == 1, response.text
    assert sorted(first) == sorted(SERVICES)
    assert starts[len(SERVICES)][0] == "notify"
    assert starts[len(SERVICES)][1] not in first.values()
    assert {r for m in mails for r in m.rcpt_tos} == EXPECTED_PER_SITE["S01"]
    assert all(participant in str(m.message["Subject"]) for m in mails)
    assert code == 0
    assert stopped_after < 10.0
    assert [pid for _, pid in up.started() if _alive(pid)] == []
    errors = up.stderr.read_text(errors="replace")
    assert '"service_restarting"' in errors
    assert "-9" in next(line for line in errors.splitlines() if "service_restarting" in line)
    output = up.stdout.read_text(errors="replace")
    assert all(f"[{name}] " in output for name in SERVICES), output[-2000:]


async def test_up_on_its_embedded_nats_delivers_as_per_service_users_and_writes_private_files(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """Each child connects as its own NATS user; no file under the data dir is for others.

    The data dir exists with 0755 beforehand (an older install): `up` makes it 0700 and says so.
    """
    env = _environment(tmp_path, smtp_server)  # no SAFETYMON_NATS_URL: the dev command embeds one
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    participant = unique("E2E")

    with _safetymon_up(tmp_path, env, DEV_UP) as up:
        up.wait_started(len(SERVICES))
        _wait_http(up.http_port)
        response = httpx.post(
            f"http://127.0.0.1:{up.http_port}/v1/events",
            json=[sae(participant_id=participant, site_id="S01")],
            headers=AUTH,
            timeout=30,
        )
        mails = await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S01"]), timeout=90)
        up.process.send_signal(signal.SIGINT)
        code = up.process.wait(30)

    log = up.stderr.read_text(errors="replace")
    exposed = {
        str(path.relative_to(data)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in [data, *data.rglob("*")]
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    }
    assert response.json()["accepted"] == 1, response.text
    assert {r for m in mails for r in m.rcpt_tos} == EXPECTED_PER_SITE["S01"]
    assert code == 0
    assert '"data_dir_mode_fixed"' in log
    assert (data / "nats-auth" / "notify.password").exists()
    assert {p.suffix for p in data.rglob("*") if p.is_file()} >= {".duckdb", ".password"}
    assert exposed == {}
    assert "Authorization Violation" not in log + up.stdout.read_text(errors="replace")
