"""Supervised background loops: a crashed loop is logged and restarted until stop().

A service's long-running loops (consumers, senders, relays) must not die quietly: a lost
sender would leave an SAE unsent. `Supervisor.spawn` runs a loop in its own task; an
exception is logged at error level under the service's event name and the loop is started
again after a capped exponential backoff. A loop that returns is done. `stop(timeout)` lets
the loops finish (their owners have told them to stop) and cancels those still running then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from kit.logging import ErrorLog

#: The longest wait before a loop that keeps crashing is started again.
BACKOFF_CAP_S = 30.0


def backoff(failures: int) -> float:
    """Seconds to wait before restarting a loop after its `failures`-th crash in a row."""
    delay: float = 0.5 * 2**failures  # int ** int is typed Any (a negative power is a float)
    return min(BACKOFF_CAP_S, delay)


class Supervisor:
    """Runs named loops, restarting one that raises, until `halt()` or `stop()`."""

    def __init__(self, log: ErrorLog, *, crash_event: str, prefix: str | None = None) -> None:
        """Log crashes as `crash_event`; name the tasks `<prefix>-<name>` when given both."""
        self._log = log
        self._event = crash_event
        self._prefix = prefix
        self._tasks: list[asyncio.Task[None]] = []
        self._halted = False

    def spawn(self, run: Callable[[], Awaitable[None]], *, name: str | None = None) -> None:
        """Run `run` in a supervised task; a crash is logged with `task=name` when named."""
        task_name = f"{self._prefix}-{name}" if self._prefix and name else None
        self._tasks.append(asyncio.create_task(self._supervise(run, name), name=task_name))

    def halt(self) -> None:
        """Restart nothing from now on; the loops still running go on until they return."""
        self._halted = True

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a grace period is the point
        """Wait up to `timeout` seconds for the loops to return, then cancel the late ones.

        Afterwards the supervisor is empty and may spawn again (a service started anew).
        """
        self._halted = True
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._halted = False

    async def _supervise(self, run: Callable[[], Awaitable[None]], name: str | None) -> None:
        fields: dict[str, object] = {} if name is None else {"task": name}
        failures = 0
        while not self._halted:
            try:
                await run()
            except Exception:
                failures += 1
                self._log.error(self._event, **fields, failures=failures, exc_info=True)
                await asyncio.sleep(backoff(failures))
            else:
                return
