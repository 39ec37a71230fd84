"""One writer thread per DuckDB file: every call on the connection runs on that thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import duckdb

T = TypeVar("T")


class DuckDBWorker:
    """Own a DuckDB file for this process and serialise all work on it.

    DuckDB allows one writing process per file and a connection is locked per query;
    a single-thread executor keeps the event loop free and the writes ordered.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"duckdb-{path.stem}")
        self._con: duckdb.DuckDBPyConnection | None = None

    def open(self, schema_sql: str) -> None:
        """Open (creating if needed) the file and apply the idempotent schema."""
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def _open() -> None:
            self._con = duckdb.connect(str(self.path))
            self._con.execute(schema_sql)

        self._executor.submit(_open).result()

    async def run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `fn(connection)` on the writer thread."""
        con = self._require()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, con)

    def run_sync(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `fn(connection)` on the writer thread from synchronous code."""
        con = self._require()
        return self._executor.submit(fn, con).result()

    def close(self) -> None:
        """Checkpoint and close the file; safe to call twice."""
        if self._con is not None:
            con, self._con = self._con, None
            self._executor.submit(con.close).result()
        self._executor.shutdown(wait=True)

    def _require(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            msg = f"DuckDB file {self.path} is not open"
            raise RuntimeError(msg)
        return self._con


def transaction(con: duckdb.DuckDBPyConnection, body: Callable[[], T]) -> T:
    """Run body inside BEGIN/COMMIT; roll back and re-raise on any error."""
    con.execute("BEGIN TRANSACTION")
    try:
        result = body()
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return result
