"""Composition root of the rules service: the only module that names concrete adapters.

Nothing connects at import time. Run alone with `python -m services.rules.main`, or embed
`build_app(settings, deps)` with `await service.start()` / `await service.stop()`
(services/rules/service.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

from kit.logging import configure_logging
from schemas import Subjects
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.adapters.trial_config import load_trial_source
from services.rules.config import Settings
from services.rules.ports import RulesStore
from services.rules.service import Adapters, RulesService


@dataclass(frozen=True, slots=True)
class Deps:
    """Dependencies to inject instead of the ones built from settings (tests, embedding)."""

    #: The store of a single-partition service (a partitioned one makes a file per partition).
    store: RulesStore | None = None


def build_app(settings: Settings | None = None, deps: Deps | None = None) -> RulesService:
    """Build (without connecting) the rules service; settings default to the environment."""
    settings = settings or Settings()
    given = (deps or Deps()).store
    if given is not None and settings.partitions != 1:
        raise ValueError("a store can be given only to a single-partition service")
    subjects = Subjects(settings.namespace)

    def store(partition: int) -> RulesStore:
        return given or DuckDBRulesStore(
            settings.partition_path(partition),
            signal_subject=subjects.signal_subject("signal_raised"),
            updated_subject=subjects.signal_subject("signal_updated"),
        )

    trial_config, identity = load_trial_source(settings.trial_config)
    return RulesService(settings, Adapters(trial_config, identity, store))


async def run(settings: Settings | None = None) -> None:
    """Run the rules service alone until SIGINT or SIGTERM."""
    os.umask(0o077)  # its DuckDB file, WAL and exports are for the service account only
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    service = build_app(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stopping.set)
    await service.start()
    try:
        await stopping.wait()
    finally:
        await service.stop()


if __name__ == "__main__":
    asyncio.run(run())
