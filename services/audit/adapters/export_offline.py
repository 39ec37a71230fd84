"""Export a bundle from the services' DuckDB files while the services are stopped (shell).

The files are opened read-only and written by the same COPY statements the running services
use, so an offline bundle is the same as an online one taken at the same log position.
DuckDB lets no other process open a file a service is writing, so a running service is
reported as such rather than waited for.

One thing only an offline bundle can hold: notify's sent journal. A notify killed between an
SMTP 250 and its outbox commit left the journal as the only proof of that send (until its
next start settles it), so the journal is copied as `notify_sent_journal.parquet` when
present; reconcile counts those sends as sent (core/journal.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import duckdb

from kit.files import file_sha256
from schemas.snapshots import FileReport
from services.audit.adapters._assemble import discard, finish, prepare
from services.audit.adapters._partitions import STAGING, merge_partitions
from services.audit.adapters.parquet_trail import write_journal
from services.audit.core.errors import ExportError
from services.audit.core.manifest import EVENT_LOG, SENT_JOURNAL, Manifest
from services.ingest.published.snapshot import copy_event_log
from services.notify.published.snapshot import copy_notify_tables, read_sent_journal
from services.rules.published.snapshot import copy_rules_snapshot

# The services' own file names (their Settings.duckdb_path, and notify's
# sent_journal_path, under the data directory).
INGEST_FILE: Final = "ingest.duckdb"
RULES_FILE: Final = "rules.duckdb"
NOTIFY_FILE: Final = "notify.duckdb"
NOTIFY_JOURNAL_FILE: Final = "notify.sent-journal"


def export_offline(data_dir: Path, out: Path) -> Manifest:
    """Write the log, signals, config history, notify trail, outbox (and journal) to `out`.

    Raises:
        ExportError: a DuckDB file is missing or in use by a running service, or `out` is
            not an empty directory.

    """
    target = out.resolve()
    created = prepare(target)
    try:
        files: dict[str, FileReport] = {}
        with _read_only(data_dir / INGEST_FILE) as con:
            files[EVENT_LOG] = copy_event_log(con, target)
        partitioned = _partition_files(data_dir)
        if partitioned:
            files.update(_rules_partitions(partitioned, target))
        else:
            with _read_only(data_dir / RULES_FILE) as con:
                # signals and config history
                files.update(copy_rules_snapshot(con, target))
        with _read_only(data_dir / NOTIFY_FILE) as con:
            files.update(copy_notify_tables(con, target))
        journal = data_dir / NOTIFY_JOURNAL_FILE
        if journal.is_file():
            files[SENT_JOURNAL] = write_journal(read_sent_journal(journal), target)
        for report in files.values():
            report["sha256"] = file_sha256(Path(report["path"]))
        source = {"mode": "offline", "data_dir": str(data_dir.resolve())}
        return finish(target, files, source=source)
    except BaseException:
        discard(target, created=created)
        raise


def _partition_files(data_dir: Path) -> list[tuple[int, Path]]:
    """A partitioned deployment's rules files (`rules-p<k>-of-<n>.duckdb`), by partition.

    The count is $SAFETYMON_PARTITIONS when set, else the one the files agree on.
    """
    found: dict[int, dict[int, Path]] = {}
    for path in data_dir.glob("rules-p*-of-*.duckdb"):
        k, _, n = path.stem.removeprefix("rules-p").partition("-of-")
        if k.isdigit() and n.isdigit():
            found.setdefault(int(n), {})[int(k)] = path
    if not found:
        return []
    wanted = os.environ.get("SAFETYMON_PARTITIONS")
    if wanted is None and len(found) > 1:
        msg = f"rules files of several partition counts {sorted(found)}: set SAFETYMON_PARTITIONS"
        raise ExportError(msg)
    count = int(wanted) if wanted else next(iter(found))
    files = found.get(count, {})
    missing = sorted(set(range(count)) - set(files))
    if missing:
        raise ExportError(f"no rules file for partition(s) {missing} of {count} in {data_dir}")
    return sorted(files.items())


def _rules_partitions(partitions: list[tuple[int, Path]], target: Path) -> dict[str, FileReport]:
    """Each partition's signals and config history, merged as the online export does."""
    staging = target / STAGING
    parts = []
    try:
        for partition, path in partitions:
            directory = staging / f"p{partition}"
            directory.mkdir(parents=True)
            with _read_only(path) as con:
                copy_rules_snapshot(con, directory)
            parts.append((partition, directory))
        return merge_partitions(target, parts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if not path.is_file():
        raise ExportError(f"{path} does not exist: is --data-dir the services' data directory?")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        if isinstance(exc, duckdb.ConnectionException) or "lock" in str(exc).lower():
            msg = (
                f"{path.name} is in use by a running service: "
                "use `safetymon audit export` without --offline"
            )
            raise ExportError(msg) from exc
        raise ExportError(f"cannot open {path} read-only: {exc}") from exc
    try:
        yield con
    except duckdb.Error as exc:
        raise ExportError(f"cannot export from {path.name}: {exc}") from exc
    finally:
        con.close()
