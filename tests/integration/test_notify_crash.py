"""kill -9 of the notify process between "intended" and "sent" (real process, NATS, SMTP, DuckDB).

Three windows: before the message reaches the SMTP server (the restart sends it once);
after the server took the whole message but before its 250 reply reached notify (the
restart resends it with the same Message-ID, marked as a possible duplicate, so the mailbox
holds one message per Message-ID; SMTP has no way to ask the server whether it kept it);
and after notify wrote the 250 to its sent journal but before the outbox commit (the
restart records it as sent from the journal and sends nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from uuid import uuid4

import duckdb
import nats
import pytest
from aiosmtpd.controller import Controller

from schemas import NOTIFY_DURABLE, Role, SignalRaised, Subjects
from services.audit.adapters.export_offline import NOTIFY_FILE, NOTIFY_JOURNAL_FILE
from services.audit.adapters.parquet_trail import read_journal, read_trail, write_journal
from services.audit.core.journal import with_journal
from services.notify.adapters.audit_export import copy_notify_tables
from services.notify.adapters.sent_journal import read_entries
from tests.conftest import free_port
from tests.unit.notify.factories import make_signal

pytestmark = pytest.mark.integration

SAFETYMON = str(Path(sys.executable).parent / "safetymon")
#: notify with the "die right after the sent-journal write" hook injected through Deps.
DYING = [sys.executable, "-m", "tests.integration.notify_dying"]
ROOT = Path(__file__).resolve().parents[2]  # where `-m tests...` resolves
SO, PI = "so@trial.example", "pi.a@site-a.example"
ROUTING = f"""
version = 1
[roles.safety_officer]
addresses = ["{SO}"]
urgencies = ["U0", "U1", "U2"]
[sites.SA.investigator]
addresses = ["{PI}"]
urgencies = ["U0", "U1"]
"""


@dataclass
class HoldingInbox:
    """Keeps every message; holds the reply to the first `hold` messages until released."""

    hold: int = 0
    received: list[bytes] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd hook
        # Queued first, replied later: a real MTA commits the message to its queue before
        # it answers 250, so a client that dies meanwhile leaves a delivered message behind.
        with self.lock:
            self.received.append(bytes(envelope.original_content or b""))
            held, self.hold = self.hold > 0, max(self.hold - 1, 0)
        if held:
            self.arrived.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        reply = "250 2.0.0 Ok: queued as HOLD" + uuid4().hex[:6]
        with self.lock:
            self.replies.append(reply)
        return reply

    def messages(self) -> list:
        with self.lock:
            return [message_from_bytes(raw, policy=policy.default) for raw in self.received]


class NotifyProcess:
    """`safetymon up --service notify` as a user starts it (or `command` instead)."""

    def __init__(self, env: dict[str, str], log: Path, command: list[str] | None = None) -> None:
        self.env, self.log = env, log
        self.command = command or [SAFETYMON, "up", "--service", "notify"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=out, stderr=out, cwd=ROOT
        )

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self.process = None
        return code

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


@pytest.fixture
def inbox() -> Iterator[tuple[HoldingInbox, int]]:
    handler, port = HoldingInbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    handler.release.set()
    controller.stop()


@pytest.fixture
def notify(tmp_path: Path, nats_url: str, namespace: str, inbox) -> Iterator[NotifyProcess]:
    _, port = inbox
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    env = {
        **os.environ,
        "SAFETYMON_DATA_DIR": str(tmp_path / "data"),
        "SAFETYMON_NATS_URL": nats_url,
        "SAFETYMON_NAMESPACE": namespace,
        "SAFETYMON_SMTP_HOST": "127.0.0.1",
        "SAFETYMON_SMTP_PORT": str(port),
        "SAFETYMON_SMTP_TIMEOUT": "30",
        "SAFETYMON_RETRY_BASE_SECONDS": "0.1",
        "SAFETYMON_RETRY_CAP_SECONDS": "0.5",
        "SAFETYMON_ROUTING": str(routing),
        "SAFETYMON_LOG_FORMAT": "json",
    }
    process = NotifyProcess(env, tmp_path / "notify.log")
    yield process
    process.stop()


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[nats.js.JetStreamContext]:
    nc = await nats.connect(nats_url)
    yield nc.jetstream()
    await nc.close()


async def eventually(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if await result if asyncio.iscoroutine(result) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def bound(js, namespace: str) -> bool:
    try:
        await js.consumer_info(Subjects(namespace).signals_stream, NOTIFY_DURABLE)
    except (nats.js.errors.NotFoundError, nats.errors.Error):
        return False
    return True


async def publish(js, namespace: str, sig: SignalRaised) -> None:
    subjects = Subjects(namespace)
    await js.publish(
        subjects.signal_subject(sig.event_type), json.dumps(sig.model_dump(mode="json")).encode(),
        stream=subjects.signals_stream, headers={"Nats-Msg-Id": str(sig.event_id)},
    )  # fmt: skip


async def delivery_log(nats_url: str, namespace: str, sig: SignalRaised) -> list[dict]:
    nc = await nats.connect(nats_url)
    try:
        body = json.dumps({"signal_id": str(sig.event_id)}).encode()
        reply = await nc.request(f"{namespace}.notify.log", body, timeout=10)
    except nats.errors.NoRespondersError:
        # The durable is bound a moment before notify subscribes to its request subjects;
        # every caller polls, so "no answer yet" is an empty log.
        return []
    finally:
        await nc.close()
    return json.loads(reply.data)["entries"]


def by_message_id(messages: list) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for message in messages:
        grouped.setdefault(str(message["Message-ID"]), []).append(message)
    return grouped


async def test_kill9_after_the_server_took_the_message_resends_same_message_id(
    notify, inbox, js, namespace, nats_url
) -> None:
    handler, _ = inbox
    handler.hold = 1
    notify.start()
    await eventually(lambda: bound(js, namespace))
    sig = make_signal(site_id="SA", recipients=(Role.SAFETY_OFFICER,))

    await publish(js, namespace, sig)
    await eventually(handler.arrived.is_set)  # the server queued the message, no reply yet
    notify.kill9()
    handler.release.set()
    notify.start()
    await eventually(lambda: len(handler.received) == 2)
    log = await _settled_log(nats_url, namespace, sig)

    [(message_id, copies)] = by_message_id(handler.messages()).items()
    assert len(copies) == 2
    assert copies[0]["X-Safetymon-Possible-Duplicate"] is None
    assert copies[1]["X-Safetymon-Possible-Duplicate"] == "yes"
    kinds = [e["event_type"] for e in log]
    assert kinds == ["notification_intended", "notification_sent"]
    notify.stop()
    notify.start()  # a confirmed notification is never sent again
    await eventually(lambda: bound(js, namespace))
    await asyncio.sleep(1.0)
    assert len(handler.received) == 2
    assert message_id == f"<{log[0]['notification_id']}@safetymon>"


async def _settled_log(nats_url: str, namespace: str, sig: SignalRaised) -> list[dict]:
    found: list[dict] = []

    async def sent() -> bool:
        found[:] = await delivery_log(nats_url, namespace, sig)
        return any(e["event_type"] == "notification_sent" for e in found)

    await eventually(sent)
    return found


async def test_kill9_before_the_server_took_it_ends_with_exactly_one_copy_each(
    notify, inbox, js, namespace, nats_url, tmp_path
) -> None:
    handler, port = inbox
    down = {**notify.env, "SAFETYMON_SMTP_PORT": str(free_port())}
    first = NotifyProcess(down, tmp_path / "first.log")
    first.start()
    await eventually(lambda: bound(js, namespace))
    signals = [make_signal(site_id="SA", participant_id=f"P-09{i}") for i in range(3)]
    for sig in signals:
        await publish(js, namespace, sig)

    async def intended() -> bool:
        logs = [await delivery_log(nats_url, namespace, s) for s in signals]
        return all(sum(e["event_type"] == "notification_intended" for e in lg) == 2 for lg in logs)

    await eventually(intended)
    first.kill9()
    notify.start()  # same data directory, the SMTP server that is up
    await eventually(lambda: len(handler.received) == 6)
    await asyncio.sleep(1.0)

    grouped = by_message_id(handler.messages())
    assert len(handler.received) == 6
    assert sorted(len(copies) for copies in grouped.values()) == [1] * 6
    got = sorted((str(m["To"]), str(m["X-Safetymon-Signal-Id"])) for m in handler.messages())
    expected = sorted((a, str(s.event_id)) for s in signals for a in (SO, PI))
    assert got == expected
    assert port  # the test server is the one notify was pointed at


async def test_kill9_after_the_journal_write_before_the_commit_sends_nothing_again(
    notify, inbox, js, namespace, nats_url, tmp_path
) -> None:
    handler, _ = inbox
    # A notify built with a test hook (notify_dying.py): the process SIGKILLs itself right
    # after the sent-journal write, i.e. after the server's 250 and before the outbox commit.
    dying = NotifyProcess(notify.env, tmp_path / "dying.log", command=DYING)
    dying.start()
    await eventually(lambda: bound(js, namespace))
    sig = make_signal(site_id="SA", recipients=(Role.SAFETY_OFFICER,))

    await publish(js, namespace, sig)
    assert await asyncio.to_thread(dying.wait_exit, 30) == -signal.SIGKILL
    assert len(handler.received) == 1
    [first_reply] = handler.replies
    _offline_evidence_counts_the_send(tmp_path / "data", tmp_path / "offline", first_reply)
    notify.start()  # same data directory, as a user starts it
    log = await _settled_log(nats_url, namespace, sig)

    # The recorded reply is the one the server gave the only copy: a resend would have got
    # another queue id, and "sent" is recorded once, so nothing was resent.
    kinds = [e["event_type"] for e in log]
    assert kinds == ["notification_intended", "notification_sent"]
    assert log[1]["smtp_reply"] == first_reply
    assert len(handler.received) == 1
    assert handler.messages()[0]["X-Safetymon-Possible-Duplicate"] is None
    assert "notification_sent_from_journal" in (tmp_path / "notify.log").read_text()


def _offline_evidence_counts_the_send(data: Path, out: Path, reply: str) -> None:
    """What `audit export --offline` copies now shows the send: the journal, not the trail."""
    out.mkdir()
    con = duckdb.connect(str(data / NOTIFY_FILE), read_only=True)
    try:
        copy_notify_tables(con, out)
    finally:
        con.close()
    write_journal(read_entries(data / NOTIFY_JOURNAL_FILE), out)
    trail = read_trail(out)

    merged, journaled = with_journal(trail, read_journal(out))

    assert [e.event_type for e in trail] == ["notification_intended"]  # the commit never came
    assert journaled == 1
    assert [e.event_type for e in merged] == ["notification_intended", "notification_sent"]
    assert read_journal(out)[0].smtp_reply == reply
