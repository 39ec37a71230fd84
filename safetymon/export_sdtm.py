"""`safetymon export sdtm --domain AE`: the AEs on the log as an SDTM-shaped AE dataset.

Sponsors check a round trip: SDTM in (`ingest --format sdtm`), SDTM out. The events come from
an audit bundle's `event_log.parquet` or, live, from ingest's snapshot endpoint (one writer
per DuckDB file: the service writes the snapshot, nobody opens its database). The mapping from
events to rows is pure (`ae_rows`); reading and writing files is the shell around it.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from kit.csv_safe import csv_text
from safetymon.ingest_files import ingest_client

export_app = typer.Typer(help="Export the log in sponsors' formats.", no_args_is_help=True)

AE_COLUMNS: Final = (
    "STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AESPID", "AETERM", "AELLTCD", "AESEV", "AETOXGR",
    "AESER", "AESDTH", "AESLIFE", "AESHOSP", "AESPROL", "AESDISAB", "AESCONG", "AESMIE",
    "AEREL", "AEOUT", "AESTDTC", "AEENDTC",
)  # fmt: skip
_FLAGS: Final = {
    "death": "AESDTH", "life_threatening": "AESLIFE", "hospitalisation": "AESHOSP",
    "prolonged_hospitalisation": "AESPROL", "disability": "AESDISAB",
    "congenital_anomaly": "AESCONG", "important_medical_event": "AESMIE",
}  # fmt: skip
_REL: Final = {"not_related": "NONE", "unlikely": "REMOTE", "possible": "POSSIBLE",
               "probable": "PROBABLE", "definite": "DEFINITE", "not_applicable": ""}  # fmt: skip
_OUT: Final = {
    "recovered": "RECOVERED/RESOLVED", "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED", "fatal": "FATAL", "unknown": "UNKNOWN",
    "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
}  # fmt: skip
_AE_TYPES: Final = ("adverse_event_reported", "adverse_event_updated")
_SOURCE_SEQ: Final = re.compile(r"\.AE\.(\d+)$")


def _current_aes(events: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Latest state of each AE by (participant, ae_ref), corrections applied, in log order."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    owner: dict[str, tuple[str, str]] = {}
    for event in events:
        kind = event.get("event_type")
        if kind in _AE_TYPES:
            key = (str(event["participant_id"]), str(event["payload"]["ae_ref"]))
            latest[key] = event
            owner[str(event["event_id"])] = key
        elif kind == "fact_corrected":
            target = owner.get(str(event["payload"]["supersedes_event_id"]))
            if target is None or target not in latest:
                continue
            replacement = event["payload"].get("replacement")
            if replacement is None:  # a retraction: the AE was never real
                del latest[target]
            else:
                latest[target] = {**latest[target], "payload": replacement}
    return latest


def _date(event: dict[str, Any], name: str) -> str:
    reported = event["payload"].get(name)
    if reported:  # partial dates go back as they came, not as the imputed instant
        return str(reported["as_reported"])
    return str(event["occurred_at"])[:19] if name == "occurred_at_as_reported" else ""


def ae_rows(events: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """SDTM AE rows (all text) of the AEs on the log; AESEQ per subject, source's when known."""
    rows: list[dict[str, str]] = []
    next_seq: dict[str, int] = {}
    for (subject, ref), event in sorted(_current_aes(events).items()):
        payload = event["payload"]
        criteria = set(payload.get("seriousness_criteria", ()))
        source_seq = _SOURCE_SEQ.search(ref)
        seq = int(source_seq[1]) if source_seq else next_seq.get(subject, 0) + 1
        next_seq[subject] = max(seq, next_seq.get(subject, 0))
        row = {
            "STUDYID": str(event["trial_id"]), "DOMAIN": "AE", "USUBJID": subject,
            "AESEQ": str(seq), "AESPID": ref, "AETERM": str(payload["term"]),
            "AELLTCD": str(payload.get("meddra_llt_code") or ""),
            "AESEV": str(payload.get("severity") or "").upper(),
            "AETOXGR": "" if payload.get("ctcae_grade_source") else str(payload["ctcae_grade"]),
            "AESER": "Y" if criteria else "N",
            "AEREL": _REL[payload.get("relatedness_uc_msc", "not_applicable")],
            "AEOUT": _OUT[payload.get("outcome", "unknown")],
            "AESTDTC": _date(event, "occurred_at_as_reported"),
            "AEENDTC": _date(event, "ended_as_reported"),
        }  # fmt: skip
        row |= {flag: "Y" if name in criteria else "N" for name, flag in _FLAGS.items()}
        rows.append({column: row[column] for column in AE_COLUMNS})
    return rows


def read_event_log(path: Path) -> list[dict[str, Any]]:
    """Events of an event_log.parquet (a bundle's, or a snapshot's), in log order."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["seq", "content"]).to_pylist()
    return [json.loads(row["content"]) for row in sorted(table, key=lambda r: r["seq"])]


def _snapshot(url: str, token: str | None, directory: Path) -> Path:
    with ingest_client(url, token) as client:
        reply = client.post("/v1/audit/snapshot")
        if reply.status_code != 200:
            raise SystemExit(f"ingest at {url} answered {reply.status_code}: {reply.text[:300]}")
        download = reply.json()["files"]["event_log.parquet"]["download"]
        target = directory / "event_log.parquet"
        with client.stream("GET", download) as response:
            response.raise_for_status()
            with target.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
    return target


def write_rows(rows: list[dict[str, str]], out: Path) -> None:
    """CSV, or SAS transport when `out` ends in .xpt."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".xpt":
        import pandas as pd  # type: ignore[import-untyped] # no stubs installed; one call
        import pyreadstat

        frame = pd.DataFrame(rows, columns=list(AE_COLUMNS)).astype(object)
        pyreadstat.write_xport(frame, str(out), table_name="AE", file_format_version=5)
        return
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=AE_COLUMNS)
        writer.writeheader()
        # Every AE variable is text here (AESEQ, AETOXGR are digits, never a formula).
        writer.writerows({k: csv_text(v) for k, v in row.items()} for row in rows)


@export_app.command("sdtm")
def export_sdtm(
    out: Annotated[Path, typer.Option(help="Dataset to write: .csv, or .xpt (SAS transport).")],
    domain: Annotated[str, typer.Option(help="SDTM domain; AE is the one supported.")] = "AE",
    bundle: Annotated[
        Path | None, typer.Option(help="An audit bundle (or its event_log.parquet).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Live: the ingest API base URL.")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="SAFETYMON_TOKEN", help="Bearer token (auditor).")
    ] = None,
) -> None:
    """Write the AEs on the log as an SDTM AE dataset, from a bundle or the live service."""
    if domain.upper() != "AE":
        raise typer.BadParameter(f"domain {domain!r}: only AE is exported", param_hint="--domain")
    if (bundle is None) == (url is None):
        raise typer.BadParameter("give either --bundle or --url", param_hint="--bundle/--url")
    with tempfile.TemporaryDirectory() as scratch:
        if bundle is not None:
            log = bundle / "event_log.parquet" if bundle.is_dir() else bundle
        else:
            log = _snapshot(str(url), token, Path(scratch))
        rows = ae_rows(read_event_log(log))
    write_rows(rows, out)
    typer.echo(json.dumps({"domain": "AE", "rows": len(rows), "out": str(out)}))
