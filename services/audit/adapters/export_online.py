"""Export a bundle through the running services (shell): each writes its own snapshot.

One writer per DuckDB file: ingest writes `event_log.parquet` under its data directory when
asked over HTTP (`POST /v1/audit/snapshot`) and serves it for download; rules writes
`signals.parquet` and `rules_config_history.parquet` (`<namespace>.audit.rules.snapshot`)
and notify its audit trail and outbox (`<namespace>.notify.audit.snapshot`) into the
requested directory when asked over NATS request/reply, so both must see the bundle
directory (same machine or shared volume). Every file is checked against the sha256 its
service reported.

Rules is asked first, before the log: rules only evaluates facts already on the log, so every
live signal's cause is then in the exported log (`audit replay` compares the two).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from kit.auth import bearer_headers
from kit.files import file_sha256
from kit.nats_security import NatsClientSettings
from schemas.snapshots import FileReport
from schemas.subjects import partition_snapshot_subject
from services.audit.adapters._assemble import discard, finish, prepare
from services.audit.adapters._partitions import STAGING, merge_partitions
from services.audit.core.errors import ExportError
from services.audit.core.manifest import EVENT_LOG, INGEST_HEADS, Manifest
from services.ingest.published.snapshot import read_heads
from services.notify.published.snapshot import snapshot_subject as notify_subject
from services.rules.published.snapshot import snapshot_subject as rules_subject


async def export_online(
    out: Path,
    *,
    ingest_url: str,
    nats_url: str,
    namespace: str,
    timeout: float = 60.0,  # noqa: ASYNC109 - each service gets this long to answer
    partitions: int | None = None,
) -> Manifest:
    """Ask rules, ingest and notify for snapshots and assemble a bundle in `out`.

    With several partitions (None: $SAFETYMON_PARTITIONS, else 1) the owner of each answers
    for its own file, and the bundle's signals and configuration history are the union of
    theirs, each row with its `partition` (each partition's signals form their own chain).

    Raises:
        ExportError: a service cannot be reached or refuses, a file arrived damaged, or
            `out` is not an empty directory. Nothing is left that looks like a bundle.

    """
    target = await asyncio.to_thread(out.resolve)  # notify writes here: it must be absolute
    created = await asyncio.to_thread(prepare, target)
    try:
        over_nats = {"nats_url": _without_credentials(nats_url), "namespace": namespace}
        count = partitions or int(os.environ.get("SAFETYMON_PARTITIONS", "1") or "1")
        rules = await _rules(target, nats_url, namespace=namespace, partitions=count, wait=timeout)
        # Heads first: every head read then is at or below the log's end in the snapshot.
        heads = await _heads(target, nats_url, namespace=namespace, wait=timeout)
        ingest, snapshot_id = await _from_ingest(target, ingest_url, wait=timeout)
        notify = await _from_nats(
            target, nats_url, service="notify", subject=notify_subject(namespace), wait=timeout
        )
        source = {
            "mode": "online",
            "ingest": {"url": _without_credentials(ingest_url), "snapshot_id": snapshot_id},
            "rules": over_nats,
            "notify": over_nats,
        }
        files = {**rules, **ingest, **notify, **heads}
        return await asyncio.to_thread(finish, target, files, source=source)
    except BaseException:
        await asyncio.to_thread(discard, target, created=created)
        raise


async def _rules(
    target: Path, url: str, *, namespace: str, partitions: int, wait: float
) -> dict[str, FileReport]:
    """The rules' files: one service's, or every partition's owner's, merged."""
    if partitions == 1:
        return await _from_nats(
            target, url, service="rules", subject=rules_subject(namespace), wait=wait
        )
    staging = target / STAGING
    parts: list[tuple[int, Path]] = []
    for partition in range(partitions):
        directory = staging / f"p{partition}"
        await asyncio.to_thread(directory.mkdir, parents=True)
        subject = partition_snapshot_subject(rules_subject(namespace), partition, partitions)
        service = f"rules (partition {partition} of {partitions})"
        files = await _from_nats(directory, url, service=service, subject=subject, wait=wait)
        await asyncio.to_thread(_check_copied, files, directory)
        parts.append((partition, directory))
    try:
        return await asyncio.to_thread(merge_partitions, target, parts)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)


def _check_copied(files: dict[str, FileReport], directory: Path) -> None:
    for name, report in files.items():
        path = directory / name
        if not path.is_file() or file_sha256(path) != report.get("sha256"):
            raise ExportError(f"{name} of {directory.name}: missing or changed on the way")


async def _heads(target: Path, url: str, *, namespace: str, wait: float) -> dict[str, FileReport]:
    """Write the heads ingest published on NATS to `ingest_heads.jsonl` (possibly empty)."""
    try:
        nc = await _connect(url, wait=wait)
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        raise ExportError(f"cannot connect to NATS at {_without_credentials(url)}") from exc
    try:
        heads = await read_heads(nc.jetstream(), namespace, wait=wait)
    except (TimeoutError, nats.errors.Error) as exc:
        raise ExportError(f"cannot read the published log heads: {type(exc).__name__}") from exc
    finally:
        await nc.close()
    path = target / INGEST_HEADS
    await asyncio.to_thread(path.write_bytes, b"".join(head + b"\n" for head in heads))
    return {
        INGEST_HEADS: {"rows": len(heads), "sha256": await asyncio.to_thread(file_sha256, path)}
    }


async def _from_ingest(
    target: Path, url: str, *, wait: float
) -> tuple[dict[str, FileReport], str | None]:
    try:
        # The auditor's token comes from $SAFETYMON_TOKEN (kit/auth.py).
        headers = bearer_headers()
        async with httpx.AsyncClient(base_url=url, timeout=wait, headers=headers) as client:
            response = await client.post("/v1/audit/snapshot")
        reply = _reply(response, url)
        report = reply["files"][EVENT_LOG]
        download = f"{url.rstrip('/')}{report['download']}"
        await asyncio.to_thread(_download, download, target / EVENT_LOG, wait=wait)
    except httpx.HTTPError as exc:
        msg = (
            f"ingest at {_without_credentials(url)}: {type(exc).__name__}: {exc}. Is it "
            "running (--ingest-url)? When the services are stopped, use --offline"
        )
        raise ExportError(msg) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"ingest's snapshot reply is malformed: {exc!r}") from exc
    return {EVENT_LOG: report}, reply.get("snapshot_id")


def _reply(response: httpx.Response, url: str) -> dict[str, Any]:
    if response.status_code != 200:
        msg = f"ingest at {_without_credentials(url)} answered {response.status_code}"
        raise ExportError(f"{msg}: {response.text[:300]}")
    body = response.json()
    if not isinstance(body, dict):
        raise ExportError("ingest's snapshot reply is not a JSON object")
    return body


def _download(url: str, path: Path, *, wait: float) -> None:
    with httpx.stream("GET", url, timeout=wait, headers=bearer_headers()) as response:
        response.raise_for_status()
        with path.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)


async def _from_nats(
    target: Path, url: str, *, service: str, subject: str, wait: float
) -> dict[str, FileReport]:
    """Ask `service`, answering on `subject` (`<namespace>.….snapshot`), for its files."""
    where = f"NATS at {_without_credentials(url)}"
    try:
        nc = await _connect(url, wait=wait)
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        raise ExportError(f"cannot connect to {where}: {type(exc).__name__}") from exc
    try:
        # The service writes only inside its data dir (kit/snapshots.py): into a new
        # directory there, copied into the bundle below (same machine or shared volume).
        message = await nc.request(subject, b"{}", timeout=wait)
    except nats.errors.NoRespondersError as exc:
        namespace = subject.split(".", 1)[0]
        msg = f"no {service} service answers on {subject} ({where}): is it running in {namespace}?"
        raise ExportError(msg) from exc
    except nats.errors.TimeoutError as exc:
        raise ExportError(f"{service} did not answer on {subject} within {wait} s") from exc
    finally:
        await nc.close()
    try:
        reply = json.loads(message.data)
    except ValueError as exc:
        raise ExportError(f"{service}'s snapshot reply is not JSON") from exc
    if not isinstance(reply, dict) or "error" in reply or "files" not in reply:
        detail = reply.get("error") if isinstance(reply, dict) else reply
        raise ExportError(f"{service} refused the snapshot: {detail}")
    files: dict[str, FileReport] = reply["files"]
    await asyncio.to_thread(_copy_in, files, target)
    return files


def _copy_in(files: dict[str, FileReport], target: Path) -> None:
    """Copy the service's files into the bundle; one not visible here is reported by finish."""
    for name, report in files.items():
        source = Path(str(report.get("path", "")))
        if source.is_file():
            shutil.copyfile(source, target / name)


async def _connect(url: str, *, wait: float) -> NatsClient:
    # nats-py retries an unreachable server forever when max_reconnect_attempts is 0 and
    # reports each failure through error_cb; one retry, and the raise below, are enough.
    async def failed(exc: Exception) -> None:
        del exc  # the connect call raises; nothing more to report here

    connecting = nats.connect(
        url.split(","),
        connect_timeout=min(wait, 5.0),
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.1,
        error_cb=failed,
        **NatsClientSettings().nats_connect_options(),  # SAFETYMON_NATS_* credentials and TLS
    )
    return await asyncio.wait_for(connecting, wait)


def _without_credentials(url: str) -> str:
    """The URL as recorded in the manifest and in messages: no user or password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
