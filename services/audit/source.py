"""Where an audit query reads from: a bundle on disk, or a fresh snapshot of the live services.

Either way the query runs on Parquet files that nobody writes: a live query first asks the
owning services for snapshots (ingest over HTTP, rules and notify over NATS request/reply,
exactly as `audit export` does) into a temporary directory, so no live DuckDB file is ever
opened and no service is blocked. A bundle is verified before it is used: a query over a log
whose chain is broken would present forged history as fact.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from services.audit.errors import AuditError
from services.audit.manifest import Manifest
from services.audit.reader import verify_bundle


class BrokenBundleError(AuditError):
    """The bundle does not verify; nothing is replayed or reconciled from it."""


@dataclass(frozen=True, slots=True)
class Live:
    """How to reach the running services for a snapshot."""

    ingest_url: str
    nats_url: str
    namespace: str
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Opened:
    """A verified bundle ready to query, and how to describe where it came from."""

    path: Path
    manifest: Manifest
    described: dict[str, Any]


@contextmanager
def open_source(bundle: Path | None, live: Live | None) -> Iterator[Opened]:
    """Yield a verified bundle: `bundle` itself, or a temporary snapshot of the live services.

    Raises:
        AuditError: neither or both sources were given, the export failed, or the bundle is
            not readable (BundleError) or does not verify (BrokenBundleError).

    """
    if bundle is not None and live is None:
        yield _verified(bundle, {"bundle": str(bundle)})
        return
    if live is None or bundle is not None:
        raise AuditError("give either a bundle directory or --live, not both or neither")
    from services.audit.export import export_online

    with tempfile.TemporaryDirectory(prefix="safetymon-audit-") as scratch:
        target = Path(scratch) / "bundle"
        manifest = asyncio.run(
            export_online(
                target,
                ingest_url=live.ingest_url,
                nats_url=live.nats_url,
                namespace=live.namespace,
                timeout=live.timeout,
            )
        )
        yield _verified(target, {"live": manifest.source})


def _verified(path: Path, described: dict[str, Any]) -> Opened:
    manifest, report = verify_bundle(path)
    if not report.ok:
        raise BrokenBundleError(f"{path} does not verify: {report.first_problem()}")
    return Opened(path, manifest, described)


def parse_moment(text: str) -> datetime:
    """An as-of time: ISO 8601; a bare date means the end of that day; no offset means UTC.

    Raises:
        ValueError: the text is not a date or a date and time, or its instant in UTC lies
            outside the years 1 to 9999 (e.g. 0001-01-01T00:00:00+14:00).

    """
    try:
        day = date.fromisoformat(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        try:
            # Comparisons with the log's UTC times would overflow later, far from the input.
            moment.astimezone(UTC)
        except OverflowError as exc:
            msg = f"{text} is out of range: in UTC it lies outside the years 1 to 9999"
            raise ValueError(msg) from exc
        return moment
    return datetime.combine(day, time.max, tzinfo=UTC)
