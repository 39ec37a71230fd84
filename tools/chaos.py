"""The fault-injection run: feed events while killing everything, then count what came out.

It is the evidence that no signal or email is lost or doubled when any process dies at any
moment. Shared by `bench/chaos.py` (the full run: 10,000 events, 20+ kills) and
`tests/chaos/test_chaos.py` (a reduced run inside `make test`). It lives in the developer
package rather than under bench/ or tests/ so both import it the same way and mypy checks
it strictly with the rest of the code; the runtime never imports it.

The run owns all of its infrastructure, so it never disturbs the machine's shared NATS:
- a private `nats-server` with JetStream on a free port (`EmbeddedNats`), restarted once on the
  same port and storage directory;
- a recording SMTP server on a free port (aiosmtpd): every message it accepts is kept with its
  envelope recipients, Message-ID and signal id, and appended to `smtp_received.jsonl`. That
  record is the ground truth of what was delivered;
- the three services as separate processes (`safetymon up --service X`) on one data dir and a
  fresh namespace; each is SIGKILLed at random moments and restarted after a short pause.

Then it waits until the pipeline has settled, exports an audit bundle through the running
services and proves, from independent sources:
- signals: the pure rules engine replaying the exported log (the audit replay) gives the
  expected signals; the signals stream of the run is what was raised. Each must be there once.
  Ingest appends a clock tick every second (SAE-02's 24 h clock; the feed's SAEs are long
  overdue, so the first tick after each fires its overdue alert), so the replay must re-derive
  tick-driven signals too, and the killed services must not lose or double them;
- emails: notify's pure planner over the expected signals under the run's routing gives the
  expected (Message-ID, recipient) pairs; the SMTP server's record is what was delivered;
- `safetymon audit verify` and `safetymon audit reconcile` over the bundle exit 0.

The fault schedule comes from one seed (printed), so a failing run can be repeated; process
timing still varies from run to run, as in any real crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from uuid import uuid4

import httpx
import nats
import nats.js.errors
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from kit.jetstream import consumers_idle
from tools.embedded import EmbeddedNats, free_port

if TYPE_CHECKING:
    from schemas import SignalRaised, SignalUpdated
    from services.notify.core.routing import Routing
    from services.rules.core.config import TrialConfig

ServiceName = Literal["ingest", "rules", "notify"]
SERVICES: Final[tuple[ServiceName, ...]] = ("ingest", "rules", "notify")
FaultKind = Literal["kill", "nats", "smtp"]
#: The log line each service writes once it is ready (consumer bound, HTTP serving).
_READY_MARKERS: Final[Mapping[ServiceName, str]] = {
    "ingest": '"ingest_started"',
    "rules": '"service_started"',
    "notify": '"notify_started"',
}
_SERVICE_START_TIMEOUT_S: Final = 60.0
_START_ATTEMPTS: Final = 3
#: A batch that gets no answer for this long means ingest is not coming back.
_INGEST_SILENCE_LIMIT_S: Final = 180.0
#: Ingest's clock tick period in the run (the default is 60 s: too slow to matter here).
CLOCK_TICK_SECONDS: Final = 1
#: Exports after the first while a late tick keeps adding expected signals (see settling).
_SETTLE_ROUNDS: Final = 3

#: The run's routing: the demo's recipients (3 sites, every role), immediate urgencies only.
#: U2 goes out in a daily digest at 08:00 Asia/Shanghai and a notify in another process
#: cannot be asked to flush it, so digest emails would depend on the time of day of the run;
#: U3 reaches the DSMB through the report, never by email (as in the demo file).
CHAOS_ROUTING: Final = """\
version = 1

[roles.safety_officer]
addresses = ["safety.officer@trial.example.org"]
urgencies = ["U0", "U1"]

[roles.dsmb_chair]
addresses = ["dsmb.chair@dsmb.example.org"]
urgencies = ["U0"]

[roles.dsmb]
addresses = ["dsmb.statistician@dsmb.example.org"]
urgencies = ["U0"]

[roles.backup]
addresses = ["medical.monitor@trial.example.org"]
urgencies = ["U0"]

[sites.S01.investigator]
addresses = ["pi.s01@site1.example.org", "oncall.s01@site1.example.org"]
urgencies = ["U0", "U1"]

[sites.S02.investigator]
addresses = ["pi.s02@site2.example.org", "oncall.s02@site2.example.org"]
urgencies = ["U0", "U1"]

[sites.S03.investigator]
addresses = ["pi.s03@site3.example.org", "oncall.s03@site3.example.org"]
urgencies = ["U0", "U1"]
"""


class ChaosError(RuntimeError):
    """The run itself could not proceed (a service would not start, nothing settled)."""


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    """The size of a run and the ranges its seeded faults are drawn from."""

    seed: int
    events: int = 10_000
    kills: int = 24
    batch: int = 50
    #: Pause between two batches, so the faults land while events are flowing.
    pace_seconds: float = 0.05
    #: How long a killed service stays down before it is started again.
    down_seconds: tuple[float, float] = (0.2, 2.0)
    nats_down_seconds: tuple[float, float] = (0.5, 2.0)
    smtp_down_seconds: tuple[float, float] = (3.0, 8.0)
    settle_timeout: float = 300.0
    #: Wait this long after the last expected email before counting, for stray duplicates.
    grace_seconds: float = 3.0

    @property
    def batches(self) -> int:
        """How many POST /v1/events requests the feed takes."""
        return math.ceil(self.events / self.batch)


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: fired once the feed has sent `after_batch` batches."""

    after_batch: int
    kind: FaultKind
    service: ServiceName | None
    down_seconds: float

    def describe(self) -> str:
        """E.g. 'kill -9 rules for 0.8 s after batch 12'."""
        what = {"kill": f"kill -9 {self.service}", "nats": "restart NATS", "smtp": "stop SMTP"}
        return f"{what[self.kind]} for {self.down_seconds:.1f} s after batch {self.after_batch}"


def fault_schedule(plan: ChaosPlan) -> tuple[Fault, ...]:
    """The seeded faults, ordered by the batch after which they fire.

    `plan.kills` kills (each service at least once), one NATS restart, one SMTP outage.
    """
    if plan.kills < len(SERVICES):
        raise ValueError(f"at least {len(SERVICES)} kills: one of each service")
    rng = random.Random(plan.seed)  # noqa: S311 - a reproducible schedule, not a secret
    last = max(plan.batches - 1, 1)
    victims = list(SERVICES)
    rng.shuffle(victims)
    victims += [rng.choice(SERVICES) for _ in range(plan.kills - len(SERVICES))]
    faults = [
        Fault(rng.randint(0, last), "kill", victim, rng.uniform(*plan.down_seconds))
        for victim in victims
    ]
    # NATS in the middle half of the feed, so facts and signals are in flight on both sides.
    middle = (plan.batches // 4, max(plan.batches * 3 // 4, plan.batches // 4))
    faults.append(Fault(rng.randint(*middle), "nats", None, rng.uniform(*plan.nats_down_seconds)))
    faults.append(Fault(rng.randint(0, last), "smtp", None, rng.uniform(*plan.smtp_down_seconds)))
    return tuple(sorted(faults, key=lambda f: (f.after_batch, f.kind)))


# --- the ground truth: a recording SMTP server -----------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the SMTP server accepted it."""

    message_id: str
    recipients: tuple[str, ...]
    signal_id: str | None
    notification_id: str | None
    possible_duplicate: bool
    subject: str


@dataclass
class _Recorder:
    """aiosmtpd handler: accept everything, remember it, append it to a JSON Lines file."""

    path: Path
    received: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd hook
        content = envelope.content or b""
        raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        headers = BytesHeaderParser().parsebytes(raw)
        delivery = Delivery(
            message_id=str(headers.get("Message-ID", "")).strip(),
            recipients=tuple(str(r).lower() for r in envelope.rcpt_tos),
            signal_id=_header(headers.get("X-Safetymon-Signal-Id")),
            notification_id=_header(headers.get("X-Safetymon-Notification-Id")),
            possible_duplicate=headers.get("X-Safetymon-Possible-Duplicate") == "yes",
            subject=" ".join(str(headers.get("Subject", "")).split()),
        )
        line = _as_json(delivery)
        with self._lock:
            # Recorded before the 250 reply leaves, so a message the client saw accepted is
            # always in the record.
            self.received.append(delivery)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        return "250 2.0.0 Ok: recorded"

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.received)


def _header(value: object) -> str | None:
    return None if value is None else str(value).strip()


def _as_json(delivery: Delivery) -> str:
    return json.dumps(
        {
            "message_id": delivery.message_id,
            "recipients": list(delivery.recipients),
            "signal_id": delivery.signal_id,
            "notification_id": delivery.notification_id,
            "possible_duplicate": delivery.possible_duplicate,
            "subject": delivery.subject,
        }
    )


class RecordingSmtp:
    """A real SMTP server on a fixed free port that can be stopped and started again."""

    def __init__(self, record: Path) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.recorder = _Recorder(record)
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen on the same port as before."""
        if self._controller is None:
            self._controller = Controller(self.recorder, hostname=self.host, port=self.port)
            self._controller.start()

    def stop(self) -> None:
        """Stop listening: clients get 'connection refused' until `start()`."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()


# --- the services as processes ----------------------------------------------------------


def safetymon_command() -> str:
    """The `safetymon` script of this interpreter's environment (the venv's)."""
    return str(Path(sys.executable).parent / "safetymon")


def process_argv(name: str) -> list[str]:
    """`safetymon up` for a process name: a service, or a rules worker `rules-<id>`."""
    kind, _, worker = name.partition("-")
    return [safetymon_command(), "up", "--service", kind, *(["--worker", worker] if worker else [])]


def _kind(name: str) -> ServiceName:
    kind = name.partition("-")[0]
    if kind not in SERVICES:
        raise ValueError(f"no service {kind!r}")
    return kind


class ServiceProcesses:
    """`safetymon up --service X` processes: start (and wait until ready), kill -9, stop."""

    def __init__(self, env: Mapping[str, str], logs: Path) -> None:
        self.env = dict(env)
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: Counter[str] = Counter()
        self.starts: Counter[str] = Counter()
        #: Starts whose process exited (or hung) before its ready line; retried.
        self.failed_starts: Counter[str] = Counter()
        #: Environment of one process on top of `env` (e.g. a rules worker's).
        self.extra_env: dict[str, dict[str, str]] = {}

    def log_path(self, service: str) -> Path:
        """Where a service's stdout and stderr go (appended across restarts)."""
        return self.logs / f"{service}.log"

    async def start(self, service: str) -> None:
        """Start the service and wait for its ready line; retry a start that dies."""
        for _ in range(_START_ATTEMPTS):
            path = self.log_path(service)
            offset = path.stat().st_size if path.exists() else 0
            with path.open("ab") as log:
                # Popen returns as soon as the child is forked; nothing here blocks the loop.
                process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own script and arguments
                    process_argv(service),
                    env={**self.env, **self.extra_env.get(service, {})},
                    stdout=log,
                    stderr=log,
                )
            self.running[service] = process
            self.starts[service] += 1
            if await self._ready(service, process, offset):
                return
            self.running.pop(service, None)
            self.failed_starts[service] += 1
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.to_thread(process.wait, 10)
        tail = self.log_path(service).read_text(errors="replace")[-3000:]
        raise ChaosError(f"{service} did not start after {_START_ATTEMPTS} attempts:\n{tail}")

    async def _ready(self, service: str, process: subprocess.Popen[bytes], offset: int) -> bool:
        marker = _READY_MARKERS[_kind(service)].encode()
        deadline = time.monotonic() + _SERVICE_START_TIMEOUT_S
        path = self.log_path(service)
        while time.monotonic() < deadline:
            with path.open("rb") as log:
                log.seek(offset)
                if marker in log.read():
                    return True
            if process.poll() is not None:
                return False
            await asyncio.sleep(0.05)
        return False

    async def kill(self, service: str) -> None:
        """SIGKILL: no shutdown code runs, whatever the process was doing is cut off."""
        process = self.running.pop(service)
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
        self.kills[service] += 1

    def stop_all(self) -> None:
        """SIGTERM every running service (a clean stop), SIGKILL after 20 s."""
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for service, process in list(self.running.items()):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            self.running.pop(service, None)

    def alive(self) -> list[str]:
        """Services whose process has not exited."""
        return [name for name, process in self.running.items() if process.poll() is None]


# --- the run ------------------------------------------------------------------------------


@dataclass
class FeedCounts:
    """What the ingest API answered, per event (its last answer) and per request."""

    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    resent_batches: int = 0
    event_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ChaosResult:
    """Every count the run prints, and the lists behind the non-zero ones."""

    seed: int
    work_dir: Path
    kills: Mapping[str, int]
    starts: Mapping[str, int]
    nats_restarts: int
    smtp_outages: int
    #: Services found dead after the faults without having been killed: a robustness bug.
    died_unkilled: tuple[str, ...]
    failed_starts: Mapping[str, int]
    feed: FeedCounts
    log_rows: int
    log_missing: int
    log_unexpected: int
    signals: SignalTally
    emails: EmailTally
    outbox_unsent: int
    verify_exit: int
    reconcile_exit: int
    reconcile_gaps: int
    seconds: float
    #: Clock ticks ingest appended to the log (not feed events: `log_rows` leaves them out).
    log_ticks: int = 0

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing twice, both chains verified, reconcile found no gap."""
        problems = (
            self.log_missing, self.log_unexpected, self.feed.rejected, self.outbox_unsent,
            self.verify_exit, self.reconcile_exit, self.signals.problems, self.emails.problems,
            self.died_unkilled,
        )  # fmt: skip
        return not any(problems)

    @property
    def only_in_doubt_resends(self) -> bool:
        """Not ok only because notify resent in-doubt messages (marked, same Message-ID)."""
        emails = self.emails
        others = self.emails.problems - emails.in_doubt_resends
        rest = (
            self.log_missing, self.log_unexpected, self.feed.rejected, self.outbox_unsent,
            self.verify_exit, self.reconcile_exit, self.signals.problems, others,
            self.died_unkilled,
        )  # fmt: skip
        return emails.in_doubt_resends > 0 and not any(rest)

    def lines(self) -> list[str]:
        """The printed summary."""
        # The processes of the run: the services, or (partitioned) ingest, workers, notify.
        names = list(self.starts) or list(SERVICES)
        kills = ", ".join(f"{s} {self.kills.get(s, 0)}" for s in names)
        # Starts that reached their ready line, less the first start of each process.
        restarts = ", ".join(
            f"{s} {self.starts.get(s, 0) - self.failed_starts.get(s, 0) - 1}" for s in names
        )
        feed, signals, emails = self.feed, self.signals, self.emails
        out = [
            f"chaos run seed={self.seed} ({self.seconds:.0f} s; files in {self.work_dir})",
            f"kills: {sum(self.kills.values())} ({kills})",
            f"restarts: services {restarts}; NATS {self.nats_restarts}; "
            f"SMTP outages {self.smtp_outages}; starts that failed and were retried "
            f"{sum(self.failed_starts.values())}; died without a kill {list(self.died_unkilled)}",
            f"events: {feed.sent} sent, {feed.accepted} accepted, {feed.duplicate} answered "
            f"duplicate (resends), {feed.rejected} rejected, {feed.resent_batches} batches "
            f"resent; log rows {self.log_rows} (missing {self.log_missing}, "
            f"unexpected {self.log_unexpected}) and {self.log_ticks} clock ticks",
            f"signals: expected {signals.expected}, raised {signals.raised}, "
            f"missing {len(signals.missing)}, duplicated {len(signals.duplicated)}, "
            f"unexpected {len(signals.unexpected)}, differing {len(signals.differing)}",
            f"emails: expected {emails.expected}, delivered {emails.delivered}, "
            f"duplicated {emails.duplicated} ({emails.in_doubt_resends} in-doubt resends marked "
            f"possible duplicate, {emails.unflagged_duplicated} unmarked), "
            f"lost {len(emails.lost)}, unexpected {len(emails.unexpected)}; "
            f"outbox unsent {self.outbox_unsent}",
            f"audit verify exit {self.verify_exit}; audit reconcile exit {self.reconcile_exit} "
            f"({self.reconcile_gaps} gaps)",
        ]
        for name, items in (
            ("lost emails", emails.lost),
            ("duplicated emails (message id, recipient, copies)", emails.duplicates),
            ("unexpected emails", emails.unexpected),
            ("missing signals", signals.missing),
            ("duplicated signals", signals.duplicated),
            ("unexpected signals", signals.unexpected),
            ("differing signals", signals.differing),
        ):
            if items:
                out.append(f"{name}: {list(items)[:10]}")
        return out


@dataclass(frozen=True, slots=True)
class SignalTally:
    """Expected signals (replayed from the log) against the signals stream's messages."""

    expected: int
    raised: int
    missing: tuple[str, ...]
    duplicated: tuple[str, ...]
    unexpected: tuple[str, ...]
    #: Same id, other content: the live rules decided differently from the replay.
    differing: tuple[str, ...]

    @property
    def problems(self) -> int:
        """Signals not raised exactly once as the replay gives them."""
        return len(self.missing) + len(self.duplicated) + len(self.unexpected) + len(self.differing)


def tally_signals(
    expected: Mapping[str, bytes], raised: Iterable[tuple[str, bytes]]
) -> SignalTally:
    """Compare expected (id -> canonical bytes) with raised (id, canonical bytes) messages."""
    raised = list(raised)
    counts = Counter(signal_id for signal_id, _ in raised)
    return SignalTally(
        expected=len(expected),
        raised=len(raised),
        missing=tuple(sorted(set(expected) - set(counts))),
        duplicated=tuple(sorted(k for k, n in counts.items() if n > 1)),
        unexpected=tuple(sorted(set(counts) - set(expected))),
        differing=tuple(sorted({k for k, body in raised if k in expected and body != expected[k]})),
    )


@dataclass(frozen=True, slots=True)
class EmailTally:
    """Expected (Message-ID, recipient) pairs against what the SMTP server accepted."""

    expected: int
    delivered: int
    lost: tuple[tuple[str, str], ...]
    #: (Message-ID, recipient, copies received) for every pair received more than once.
    duplicates: tuple[tuple[str, str, int], ...]
    unexpected: tuple[tuple[str, str], ...]
    flagged_possible_duplicate: int
    #: Extra copies NOT explained by notify's in-doubt resend: a second copy without the
    #: `X-Safetymon-Possible-Duplicate: yes` header that notify puts on a message it sends
    #: again because a crash left it unsure whether the server had taken the first.
    unflagged_duplicated: int = 0

    @property
    def duplicated(self) -> int:
        """Extra copies beyond the first."""
        return sum(copies - 1 for _, _, copies in self.duplicates)

    @property
    def in_doubt_resends(self) -> int:
        """Extra copies that notify marked as possible duplicates (same Message-ID)."""
        return self.duplicated - self.unflagged_duplicated

    @property
    def problems(self) -> int:
        """Emails not delivered exactly once as planned."""
        return len(self.lost) + self.duplicated + len(self.unexpected)


def tally_emails(expected: set[tuple[str, str]], deliveries: Sequence[Delivery]) -> EmailTally:
    """Count each expected (Message-ID, recipient) pair in what the SMTP server accepted."""
    received = Counter((d.message_id, rcpt.lower()) for d in deliveries for rcpt in d.recipients)
    flagged = Counter(
        (d.message_id, rcpt.lower())
        for d in deliveries
        if d.possible_duplicate
        for rcpt in d.recipients
    )
    unflagged = sum(max(0, n - 1 - flagged[pair]) for pair, n in received.items())
    return EmailTally(
        expected=len(expected),
        delivered=sum(1 for pair in expected if received[pair]),
        lost=tuple(sorted(pair for pair in expected if not received[pair])),
        duplicates=tuple(sorted((mid, rcpt, n) for (mid, rcpt), n in received.items() if n > 1)),
        unexpected=tuple(sorted(set(received) - expected)),
        flagged_possible_duplicate=sum(d.possible_duplicate for d in deliveries),
        unflagged_duplicated=unflagged,
    )


def clean_environment(base: Mapping[str, str]) -> dict[str, str]:
    """`base` without any SAFETYMON_ setting, so nothing leaks in from the caller's shell."""
    return {key: value for key, value in base.items() if not key.startswith("SAFETYMON_")}


class ChaosRun:
    """One run in `work_dir`; `await run()` returns the result (and leaves the files)."""

    def __init__(
        self, plan: ChaosPlan, work_dir: Path, *, say: Callable[[str], None] | None = None
    ) -> None:
        self.plan = plan
        self.work_dir = work_dir
        self.say = say or (lambda _line: None)
        self.token = "chaos-" + uuid4().hex
        self.namespace = f"chaos{uuid4().hex[:10]}"
        self.http_port = free_port()
        self.routing = work_dir / "routing.toml"
        self.nats = EmbeddedNats(work_dir / "nats-root")
        self.smtp = RecordingSmtp(work_dir / "smtp_received.jsonl")
        self.processes = ServiceProcesses(self._env(), work_dir)
        self.faults = fault_schedule(plan)
        self.fired = 0  # faults launched
        self.nats_restarts = 0
        self.smtp_outages = 0
        self.died_unkilled: list[str] = []
        self._progress = 0  # batches answered by ingest
        # The feeder and the fault injector wait on each other's counters through this.
        self._changed = asyncio.Condition()
        # Set while a POST is in flight: kills of ingest aim at an unanswered request, the
        # case where events are appended but the client never hears so and resends them.
        self._in_flight = asyncio.Event()

    def _env(self) -> dict[str, str]:
        return {
            **clean_environment(os.environ),
            "SAFETYMON_DATA_DIR": str(self.work_dir / "data"),
            "SAFETYMON_NATS_URL": self.nats.url,
            "SAFETYMON_NAMESPACE": self.namespace,
            "SAFETYMON_SMTP_HOST": self.smtp.host,
            "SAFETYMON_SMTP_PORT": str(self.smtp.port),
            "SAFETYMON_HTTP_PORT": str(self.http_port),
            "SAFETYMON_ROUTING": str(self.routing),
            "SAFETYMON_LOG_FORMAT": "json",
            "SAFETYMON_BOOTSTRAP_TOKEN": self.token,
            "SAFETYMON_TOKEN": self.token,
            # Retry a refused SMTP connection within seconds (default cap 60 s), so the
            # run's SMTP outage does not leave it waiting a minute after the server is back.
            "SAFETYMON_RETRY_BASE_SECONDS": "0.5",
            "SAFETYMON_RETRY_CAP_SECONDS": "4",
            "SAFETYMON_SMTP_TIMEOUT": "5",
            # Ticks on, as in production, at a short period: every SAE of the feed is
            # overdue, so SAE-02 alerts are raised within a second of each SAE, under the
            # same kills as everything else, and the expected signals come from the audit
            # replay of a log with ticks in it.
            "SAFETYMON_CLOCK_TICK_SECONDS": str(CLOCK_TICK_SECONDS),
        }

    @property
    def ingest_url(self) -> str:
        """Base URL of the ingest API."""
        return f"http://127.0.0.1:{self.http_port}"

    async def run(self) -> ChaosResult:
        """Start everything, feed under faults, settle, export, count; always clean up."""
        started = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.routing.write_text(CHAOS_ROUTING, encoding="utf-8")
        self.say(f"chaos seed={self.plan.seed} work dir {self.work_dir}")
        for fault in self.faults:
            self.say(f"  planned: {fault.describe()}")
        await asyncio.to_thread(self.nats.start)
        self.smtp.start()
        try:
            for service in SERVICES:
                await self.processes.start(service)
            feed = await self._feed_under_faults()
            await self._all_up()
            result = await self._settle_and_count(feed, started)
        finally:
            await asyncio.to_thread(self.processes.stop_all)
            self.smtp.stop()
            await asyncio.to_thread(self.nats.stop)
        return result

    # -- feeding and faults --

    async def _feed_under_faults(self) -> FeedCounts:
        from tools.demo.generator import HISTORIC_START, generate_events

        # Pinned, not ending at "now": a chaos run is replayed from its plan, feed included.
        source = generate_events(self.plan.events, seed=self.plan.seed, start=HISTORIC_START)
        items = sponsor_reports_last(list(source))
        batches = [items[i : i + self.plan.batch] for i in range(0, len(items), self.plan.batch)]
        chaos = asyncio.create_task(self._faults_then_wake())
        try:
            feed = await self._feed(batches, chaos)
            await chaos
        finally:
            if not chaos.done():
                chaos.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chaos
        return feed

    async def _faults_then_wake(self) -> None:
        try:
            await self._inject_faults()
        finally:  # however it ends, the feeder must not wait for faults that will not fire
            async with self._changed:
                self._changed.notify_all()

    async def _feed(
        self, batches: Sequence[list[dict[str, Any]]], chaos: asyncio.Task[None]
    ) -> FeedCounts:
        counts = FeedCounts()
        final: dict[int, dict[str, Any]] = {}
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(base_url=self.ingest_url, headers=headers) as client:
            for number, batch in enumerate(batches):
                # A fault planned after batch n is launched before batch n+1 goes out; the
                # feed goes on while the service is down (for ingest: it resends).
                async with self._changed:
                    await self._changed.wait_for(partial(self._may_post, number, chaos))
                if chaos.done() and self._due(number) > self.fired:
                    chaos.result()  # re-raise what stopped the fault injector
                results = await self._post(client, batch, counts, chaos)
                for result in results:
                    final[number * self.plan.batch + int(result["index"])] = result
                counts.sent += len(batch)
                await self._advance(progress=number + 1)
                await asyncio.sleep(self.plan.pace_seconds)
        for result in final.values():
            status = str(result["status"])
            if status == "accepted":
                counts.accepted += 1
            elif status == "duplicate":
                counts.duplicate += 1
            else:
                counts.rejected += 1
            if status in {"accepted", "duplicate"} and result.get("event_id"):
                counts.event_ids.add(str(result["event_id"]))
        return counts

    async def _advance(self, *, progress: int | None = None, fired: int = 0) -> None:
        async with self._changed:
            if progress is not None:
                self._progress = progress
            self.fired += fired
            self._changed.notify_all()

    def _may_post(self, batch_number: int, chaos: asyncio.Task[None]) -> bool:
        return chaos.done() or self._due(batch_number) <= self.fired

    def _may_fire(self, fault: Fault) -> bool:
        return self._progress > fault.after_batch or self._progress >= self.plan.batches

    def _due(self, batch_number: int) -> int:
        """How many faults must have fired before `batch_number` is posted."""
        return sum(fault.after_batch < batch_number for fault in self.faults)

    async def _post(
        self,
        client: httpx.AsyncClient,
        batch: list[dict[str, Any]],
        counts: FeedCounts,
        chaos: asyncio.Task[None],
    ) -> list[dict[str, Any]]:
        """POST until ingest answers; a resend is safe (each event: accepted or duplicate)."""
        first = True
        give_up = time.monotonic() + _INGEST_SILENCE_LIMIT_S
        while True:
            if time.monotonic() > give_up:
                tail = self.processes.log_path("ingest").read_text(errors="replace")[-3000:]
                raise ChaosError(f"ingest did not answer for {_INGEST_SILENCE_LIMIT_S} s:\n{tail}")
            if chaos.done() and chaos.exception() is not None:
                chaos.result()  # ingest will not come back: say why instead of waiting
            if not first:
                counts.resent_batches += 1
                await asyncio.sleep(0.2)
            first = False
            self._in_flight.set()
            try:
                response = await client.post("/v1/events", json=batch, timeout=30)
            except httpx.TransportError:
                continue  # ingest is down or was killed mid-request
            finally:
                self._in_flight.clear()
            if response.status_code >= 500:
                continue
            if response.status_code not in {200, 207, 422}:
                raise ChaosError(f"ingest answered {response.status_code}: {response.text[:500]}")
            results: list[dict[str, Any]] = response.json()["results"]
            return results

    async def _inject_faults(self) -> None:
        """Launch each fault once the feed has passed its batch; each runs as its own task.

        Faults overlap (notify may be killed while SMTP is down and NATS restarts), but one
        target is hit by one fault at a time: a second kill of a service waits until the
        first restart is ready.
        """
        rng = random.Random(self.plan.seed + 1)  # noqa: S311 - seeded jitter of the faults
        locks = {target: asyncio.Lock() for target in (*SERVICES, "nats", "smtp")}
        running: list[asyncio.Task[None]] = []
        for fault in self.faults:
            async with self._changed:
                await self._changed.wait_for(partial(self._may_fire, fault))
            # Up to 0.3 s later, while the next batch is already in flight: a kill of
            # ingest then often lands in the middle of a request.
            jitter = rng.uniform(0.0, 0.3)
            running.append(asyncio.create_task(self._fault(fault, jitter, locks)))
            await self._advance(fired=1)
        await asyncio.gather(*running)

    async def _fault(self, fault: Fault, jitter: float, locks: Mapping[str, asyncio.Lock]) -> None:
        await asyncio.sleep(jitter)
        async with locks[fault.service or fault.kind]:
            self.say(f"  fault: {fault.describe()}")
            if fault.kind == "kill":
                assert fault.service is not None  # noqa: S101 - fault_schedule sets it
                if fault.service == "ingest":
                    with contextlib.suppress(TimeoutError):  # none in flight: kill it anyway
                        await asyncio.wait_for(self._in_flight.wait(), timeout=2.0)
                    await asyncio.sleep(jitter / 2)  # 0-150 ms into the request
                await self.processes.kill(fault.service)
                await asyncio.sleep(fault.down_seconds)
                await self.processes.start(fault.service)
            elif fault.kind == "nats":
                await asyncio.to_thread(self.nats.stop)
                await asyncio.sleep(fault.down_seconds)
                await asyncio.to_thread(self.nats.start)
                self.nats_restarts += 1
            else:
                self.smtp.stop()
                await asyncio.sleep(fault.down_seconds)
                self.smtp.start()
                self.smtp_outages += 1

    async def _all_up(self) -> None:
        """Restart any service that died by itself (and say so: that is a finding)."""
        for service in SERVICES:
            if service not in self.processes.alive():
                self.say(f"  {service} was not running after the faults; starting it")
                self.died_unkilled.append(service)
                self.processes.running.pop(service, None)
                await self.processes.start(service)

    # -- settling and counting --

    async def _settle_and_count(self, feed: FeedCounts, started: float) -> ChaosResult:
        from services.audit.adapters.settings_files import (
            PACKAGED_CONFIG,
            load_config,
            load_routing,
        )

        deadline = time.monotonic() + self.plan.settle_timeout
        await self._wait_quiet(deadline)
        first = await self._export("bundle-settled")
        # The packaged trial file, as the services read it from their clean environment.
        config = load_config(
            Path(str(resources.files("services.rules") / "trial_config")) / PACKAGED_CONFIG
        )
        routing = load_routing(self.routing)
        expected, expected_pairs = await _expectations(first, config, routing)
        bundle = first
        # Ticks go on while the run settles; one appended after an export can still fire an
        # SAE-02 alert (an SAE no tick had followed yet). So the expectation is taken again
        # from the last export, and the run waits once more while that adds an email.
        for round_ in range(1, _SETTLE_ROUNDS + 1):
            await self._wait_delivered(set(expected_pairs), deadline)
            await asyncio.sleep(self.plan.grace_seconds)
            await self._wait_quiet(deadline)
            bundle = await self._export("bundle" if round_ == 1 else f"bundle-{round_}")
            before = set(expected_pairs)
            expected, expected_pairs = await _expectations(bundle, config, routing)
            if set(expected_pairs) <= before:
                break
            self.say(f"  the log gave {len(set(expected_pairs) - before)} more email(s); waiting")
        raised = await _read_signals(self.nats.url, self.namespace)
        deliveries = self.smtp.recorder.snapshot()
        log_ids, ticks = _log_event_ids(bundle)
        verify_exit, _ = await self._cli("verify", str(bundle), "--json")
        reconcile_exit, reconcile_out = await self._cli(
            "reconcile", str(bundle), "--routing", str(self.routing), "--json"
        )
        return ChaosResult(
            seed=self.plan.seed,
            work_dir=self.work_dir,
            kills=dict(self.processes.kills),
            starts=dict(self.processes.starts),
            nats_restarts=self.nats_restarts,
            smtp_outages=self.smtp_outages,
            died_unkilled=tuple(self.died_unkilled),
            failed_starts=dict(self.processes.failed_starts),
            feed=feed,
            log_rows=len(log_ids),
            log_missing=len(feed.event_ids - set(log_ids)),
            log_unexpected=len(set(log_ids) - feed.event_ids) + len(log_ids) - len(set(log_ids)),
            signals=tally_signals({str(s.event_id): _canonical(s) for s in expected}, raised),
            emails=tally_emails(set(expected_pairs), deliveries),
            outbox_unsent=_outbox_unsent(bundle),
            verify_exit=verify_exit,
            reconcile_exit=reconcile_exit,
            reconcile_gaps=_gap_count(reconcile_out),
            seconds=time.monotonic() - started,
            log_ticks=ticks,
        )

    async def _wait_quiet(self, deadline: float) -> None:
        """Until the log is on the facts stream and both durable consumers have nothing left.

        Checked twice a second apart: rules publishes its signals from an outbox after its
        commit, so one quiet look can fall between the two.
        """
        from schemas import NOTIFY_DURABLE, RULES_DURABLE, Subjects

        subjects = Subjects(self.namespace)
        headers = {"Authorization": f"Bearer {self.token}"}
        quiet_in_a_row = 0
        async with httpx.AsyncClient(base_url=self.ingest_url, headers=headers) as client:
            while time.monotonic() < deadline:
                try:
                    head = int((await client.get("/v1/log/head", timeout=10)).json()["seq"])
                    quiet = await _streams_quiet(
                        self.nats.url,
                        facts=(subjects.facts_stream, RULES_DURABLE),
                        signals=(subjects.signals_stream, NOTIFY_DURABLE),
                        log_rows=head,
                    )
                except (httpx.HTTPError, nats.errors.Error, OSError, KeyError, ValueError):
                    quiet = False
                quiet_in_a_row = quiet_in_a_row + 1 if quiet else 0
                if quiet_in_a_row >= 2:
                    return
                await asyncio.sleep(1.0)
        raise ChaosError(f"the pipeline did not settle within {self.plan.settle_timeout} s")

    async def _wait_delivered(self, expected: set[tuple[str, str]], deadline: float) -> None:
        """Until the SMTP server has every expected email (or the deadline: then some are lost)."""
        while time.monotonic() < deadline:
            got = {(d.message_id, r) for d in self.smtp.recorder.snapshot() for r in d.recipients}
            if expected <= got:
                return
            await asyncio.sleep(0.5)
        self.say("  deadline reached with emails still missing; counting them as lost")

    async def _export(self, name: str) -> Path:
        from services.audit.adapters.export_online import export_online

        out = self.work_dir / name
        previous = os.environ.get("SAFETYMON_TOKEN")
        os.environ["SAFETYMON_TOKEN"] = self.token  # export_online authenticates from the env
        try:
            await export_online(
                out, ingest_url=self.ingest_url, nats_url=self.nats.url, namespace=self.namespace
            )
        finally:
            if previous is None:
                os.environ.pop("SAFETYMON_TOKEN", None)
            else:
                os.environ["SAFETYMON_TOKEN"] = previous
        return out

    async def _cli(self, *args: str) -> tuple[int, str]:
        """`safetymon audit ARGS` as an auditor runs it; its exit code and stdout."""
        env = {**self.processes.env}
        done = await asyncio.to_thread(
            subprocess.run,
            [safetymon_command(), "audit", *args],
            env=env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        if done.returncode:
            self.say(f"  safetymon audit {args[0]} exit {done.returncode}: {done.stderr[-2000:]}")
        return done.returncode, done.stdout


def _message_id(notification_id: str) -> str:
    from uuid import UUID

    from services.notify.core.plan import message_id_for

    return message_id_for(UUID(notification_id))


def _canonical(signal: SignalRaised | SignalUpdated) -> bytes:
    from schemas import canonical_bytes

    return canonical_bytes(signal.model_dump(mode="json"))


async def _streams_quiet(
    url: str, *, facts: tuple[str, str], signals: tuple[str, str], log_rows: int
) -> bool:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        stored = (await js.stream_info(facts[0])).state.messages
        if stored < log_rows:
            return False  # the relay has not confirmed the whole log yet
        return await consumers_idle(js, (facts, signals))
    finally:
        await nc.close()


async def _read_signals(url: str, namespace: str) -> list[tuple[str, bytes]]:
    """Every message on the signals stream: (signal id, canonical bytes), repeats included."""
    from schemas import SIGNAL_ADAPTER, Subjects

    nc = await nats.connect(url)
    bodies: list[tuple[str, bytes]] = []
    try:
        js = nc.jetstream()
        stream = Subjects(namespace).signals_stream
        total = (await js.stream_info(stream)).state.messages
        sub = await js.pull_subscribe("", stream=stream)  # ephemeral: moves no durable
        seen = 0
        while seen < total:
            for msg in await sub.fetch(min(500, total - seen), timeout=10):
                raised = SIGNAL_ADAPTER.validate_json(msg.data)
                bodies.append((str(raised.event_id), _canonical(raised)))
                seen += 1
                await msg.ack()
        await sub.unsubscribe()
    finally:
        await nc.close()
    return bodies


def sponsor_reports_last(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feed with its SAE reports to the sponsor moved to the end (same events, same count).

    The demo feed reports each SAE to the sponsor right after it, so its SAE-02 clock would
    close before a tick found it open. Sent last, the SAEs' clocks stay open, and long overdue,
    through the ticks in between: the first tick after an SAE raises its SAE-02 overdue alert,
    under the same faults as everything else.
    """
    reports = [item for item in items if item["event_type"] == "sae_reported_to_sponsor"]
    return [item for item in items if item["event_type"] != "sae_reported_to_sponsor"] + reports


def _log_event_ids(bundle: Path) -> tuple[list[str], int]:
    """Event ids of the log's facts, and how many clock ticks ingest appended besides them."""
    import pyarrow.parquet as pq

    from services.audit.core.manifest import EVENT_LOG

    table = pq.read_table(bundle / EVENT_LOG, columns=["event_id", "event_type"])
    rows = zip(
        table.column("event_id").to_pylist(), table.column("event_type").to_pylist(), strict=True
    )
    ids, ticks = [], 0
    for event_id, event_type in rows:
        if event_type == "clock_ticked":
            ticks += 1
        else:
            ids.append(str(event_id))
    return ids, ticks


async def _expectations(
    bundle: Path, config: TrialConfig, routing: Routing
) -> tuple[list[SignalRaised | SignalUpdated], dict[tuple[str, str], str]]:
    """The signals a replay of the bundle gives, and the (Message-ID, recipient) pairs they need."""
    from services.audit.adapters.replayer import replay_bundle
    from services.audit.core.routing import required

    replay = await asyncio.to_thread(replay_bundle, bundle, as_of=None, config=config)
    expected = [item.signal for item in replay.signals]
    pairs = {
        (_message_id(need.notification_id), need.address.lower()): str(signal.event_id)
        for signal in expected
        for need in required(signal, routing)
    }
    return expected, pairs


def _outbox_unsent(bundle: Path) -> int:
    """Notifications notify still holds as intended (never confirmed by the SMTP server)."""
    import pyarrow.parquet as pq

    from services.audit.core.manifest import OUTBOX

    statuses = pq.read_table(bundle / OUTBOX, columns=["status"]).column("status").to_pylist()
    return sum(status == "intended" for status in statuses)


def _gap_count(reconcile_json: str) -> int:
    try:
        return len(json.loads(reconcile_json)["gaps"])
    except (ValueError, KeyError, TypeError):
        return -1  # no JSON: the exit code and the printed stderr say why
