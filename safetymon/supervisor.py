"""Run each service as a child OS process and keep it running (`safetymon up`, the demo).

Why processes: in one asyncio process a rules backlog starved ingest's HTTP API (/health
took 2-5 s); separate processes get their own interpreter and core. The restart decision
is pure (`RestartPolicy.after_exit`, no clock or sleep); `Supervisor` is the small loop
around it: spawn, prefix the child's output lines, wait for its exit, back off, respawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import structlog

log = structlog.get_logger(__name__)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True, slots=True)
class Restart:
    """What to do after a child exited: restart after `delay` s, or give up (None)."""

    failures: int  # consecutive exits without a stable run, this one included
    delay: float | None


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Exponential backoff between restarts; a stable run resets it; many quick deaths stop.

    Giving up stops the whole stack with a failure status: a stack silently running without
    notify (say, a bad routing file) is worse than one that is visibly down.
    """

    first_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 60.0  # a child that ran this long counts as healthy again
    give_up_after: int = 10  # consecutive unstable exits (~2.5 min of crash loop)

    def after_exit(self, failures: int, *, ran_for: float) -> Restart:
        """Decide after an exit, given the failures before it and how long the child ran."""
        failures = 1 if ran_for >= self.stable_after else failures + 1
        if failures > self.give_up_after:
            return Restart(failures, None)
        return Restart(failures, min(self.max_delay, self.first_delay * 2 ** (failures - 1)))


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One supervised child: its name (the log prefix), command line and environment."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


def service_argv(service: str, *extra: str) -> tuple[str, ...]:
    """The command line of one service run in the foreground by this interpreter."""
    return (sys.executable, "-m", "safetymon.cli", "up", "--service", service, *extra)


def child_names(
    services: Sequence[str], *, rules_workers: int = 1
) -> list[tuple[str, tuple[str, ...]]]:
    """(name, argv) of each child: one per service, the rules as `rules_workers` workers.

    A new kind of child is one more entry here (and in the services it is chosen from).
    """
    children: list[tuple[str, tuple[str, ...]]] = []
    for service in services:
        if service == "rules" and rules_workers > 1:
            children.extend(
                (f"rules-{n}", service_argv("rules", "--worker", str(n)))
                for n in range(rules_workers)
            )
        else:
            children.append((service, service_argv(service)))
    return children


@dataclass
class Supervisor:
    """Keep each child running until `stop()`; their output goes to `out`, line by line."""

    children: Sequence[ChildSpec]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    grace: float = 5.0  # seconds between SIGTERM and SIGKILL at stop
    out: BinaryIO = field(default_factory=lambda: sys.stdout.buffer)
    clock: Callable[[], float] = time.monotonic
    pids: dict[str, int] = field(init=False, default_factory=dict)  # running children
    _stopping: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _keepers: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    async def start(self) -> None:
        """Spawn every child; return once all are spawned (not yet ready)."""
        for spec in self.children:
            process = await self._spawn(spec)
            self._keepers.append(asyncio.create_task(self._keep(spec, process), name=spec.name))

    @property
    def gave_up(self) -> bool:
        """Whether a child was given up on (its keeper ended while not stopping)."""
        return not self._stopping.is_set() and any(task.done() for task in self._keepers)

    async def wait_failed(self) -> str:
        """Return the name of the first child given up on (or whose keeper crashed)."""
        done, _ = await asyncio.wait(self._keepers, return_when=asyncio.FIRST_COMPLETED)
        task = done.pop()
        if not task.cancelled() and task.exception() is not None:
            log.error("supervisor_failed", service=task.get_name(), exc_info=task.exception())
        return task.get_name()

    async def stop(self) -> None:
        """SIGTERM every child, SIGKILL those still running after `grace` s; wait for all."""
        self._stopping.set()
        await asyncio.gather(*self._keepers, return_exceptions=True)

    async def _keep(self, spec: ChildSpec, process: asyncio.subprocess.Process) -> None:
        failures = 0
        while True:
            started = self.clock()
            code = await self._until_exit(spec, process)
            if self._stopping.is_set():
                return
            decision = self.policy.after_exit(failures, ran_for=self.clock() - started)
            failures = decision.failures
            if decision.delay is None:
                log.error("service_given_up", service=spec.name, exit_code=code, failures=failures)
                return
            log.warning(
                "service_restarting", service=spec.name, exit_code=code,
                delay_s=decision.delay, failures=failures,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), decision.delay)
                return  # stopped while backing off
            process = await self._spawn(spec)

    async def _spawn(self, spec: ChildSpec) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            env=dict(spec.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Own session: a terminal's Ctrl-C reaches the supervisor only, which stops the
            # children itself (and does not mistake their exit for a crash to restart).
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only prctl: no locks, no imports
        )
        self.pids[spec.name] = process.pid
        log.info("service_started", service=spec.name, pid=process.pid)
        return process

    async def _until_exit(self, spec: ChildSpec, process: asyncio.subprocess.Process) -> int:
        assert process.stdout is not None and process.stderr is not None  # noqa: S101 - piped above
        pumps = [
            asyncio.create_task(self._pump(spec.name, stream))
            for stream in (process.stdout, process.stderr)
        ]
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not exited.done():
            await _terminate(process, exited, grace=self.grace)
        # The pipes close at exit; a grandchild still holding them must not hold us up.
        await asyncio.wait(pumps, timeout=1.0)
        for pump in pumps:
            pump.cancel()
        self.pids.pop(spec.name, None)
        return await exited

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        prefix = f"[{name}] ".encode()
        while line := await _read_line(stream):
            self.out.write(prefix + line + (b"" if line.endswith(b"\n") else b"\n"))
            self.out.flush()


async def _terminate(
    process: asyncio.subprocess.Process, exited: asyncio.Task[int], *, grace: float
) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    done, _ = await asyncio.wait({exited}, timeout=grace)
    if not done:
        log.warning("service_killed", pid=process.pid, after_s=grace)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await exited


async def _read_line(stream: asyncio.StreamReader) -> bytes:
    """The next line (b"" at the end); an over-long line comes in pieces."""
    try:
        return await stream.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    except asyncio.LimitOverrunError as exc:
        return await stream.read(exc.consumed)


def _load_libc() -> ctypes.CDLL | None:
    # Loaded in the parent: between fork and exec the child must not take locks (dlopen).
    return ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


_LIBC = _load_libc()


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the supervisor dies, even by kill -9.

    Otherwise orphans would keep the DuckDB files and the HTTP port, and the next
    `safetymon up` would fail to start.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
