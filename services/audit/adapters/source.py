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
from pathlib import Path

from services.audit.adapters.bundle_reader import verify_bundle
from services.audit.core.errors import AuditError, BrokenBundleError
from services.audit.ports import Described, Opened


@dataclass(frozen=True, slots=True)
class Live:
    """How to reach the running services for a snapshot."""

    ingest_url: str
    nats_url: str
    namespace: str
    timeout: float = 60.0


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
    from services.audit.adapters.export_online import export_online

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


def _verified(path: Path, described: Described) -> Opened:
    manifest, report = verify_bundle(path)
    if not report.ok:
        raise BrokenBundleError(f"{path} does not verify: {report.first_problem()}")
    return Opened(path, manifest, described)
