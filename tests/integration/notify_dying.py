"""Run notify (as `safetymon up --service notify` would) with a test hook: die after the journal.

The hook SIGKILLs the process right after the first write to the sent journal, i.e. after
the SMTP server's 250 and before the outbox commit, so the crash test
(test_notify_crash.py) can hit that exact point. Injected through `Deps`: production
settings carry no test switch. Settings come from the SAFETYMON_* environment.
"""

from __future__ import annotations

import asyncio
import os
import signal

from kit.logging import configure_logging
from safetymon.runner import stop_signalled
from services.notify.config import Settings
from services.notify.main import Deps, build_app


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def _run() -> None:
    settings = Settings()
    configure_logging(settings.log_format)
    service = build_app(settings, Deps(after_journal_write=_die))
    stopping = stop_signalled()
    await service.start()
    try:
        await stopping.wait()
    finally:
        await service.stop()


if __name__ == "__main__":
    asyncio.run(_run())
