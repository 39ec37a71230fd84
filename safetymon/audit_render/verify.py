"""How `safetymon audit export` and `verify` show their results to people: rich tables.

The JSON document (`--json`, and `audit serve`) is `services.audit.adapters.documents`.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.audit.core.manifest import Manifest
from services.audit.core.verify import BundleReport, ChainReport, SignalsReport


def print_manifest(console: Console, out: Path, manifest: Manifest) -> None:
    """Summarise a bundle just written (full digests and heads are in manifest.json)."""
    table = Table(title=f"Audit bundle {out}", title_justify="left")
    for column in ("file", "rows", "sha256", "seq", "head"):
        table.add_column(column, no_wrap=True, justify="right" if column == "rows" else "left")
    for name, entry in manifest.files.items():
        chain = entry.chain
        seq = f"{chain.first_seq}..{chain.last_seq}" if chain and chain.first_seq else "-"
        table.add_row(
            name, str(entry.rows), _short(entry.sha256), seq, _short(chain.head) if chain else "-"
        )
    console.print(table)
    _print_heads(console, {name: e.chain.head for name, e in manifest.files.items() if e.chain})
    console.print(f"created {manifest.created_at.isoformat()}; check it with "
                  f"`safetymon audit verify {out}`", highlight=False, soft_wrap=True)  # fmt: skip


def _short(digest: str | None) -> str:
    return f"{digest[:16]}…" if digest else "-"


def _print_heads(console: Console, heads: dict[str, str]) -> None:
    for name, head in heads.items():
        console.print(f"head of {name}: {head}", highlight=False, soft_wrap=True)


def print_report(console: Console, bundle: Path, manifest: Manifest, report: BundleReport) -> None:
    """Files, then chains, then one verdict line."""
    console.print(f"Bundle {bundle} (format {manifest.format_version}, created "
                  f"{manifest.created_at.isoformat()})", highlight=False)  # fmt: skip
    files = Table(title="Files", title_justify="left")
    for column in ("file", "manifest rows", "sha256", "status"):
        files.add_column(column, no_wrap=column != "status", justify="left")
    for check in report.files:
        entry = manifest.files.get(check.name)
        status = "[green]matches manifest[/green]" if check.ok else f"[red]{check.problem}[/red]"
        rows = str(entry.rows) if entry is not None else "?"
        files.add_row(check.name, rows, _short(check.actual_sha256), status)
    console.print(files)
    chains = Table(title="Hash chains", title_justify="left")
    for column in ("chain", "status", "entries", "head", "finding"):
        chains.add_column(column, no_wrap=column != "finding")
    for chain in report.chains:
        chains.add_row(*_chain_cells(chain))
    console.print(chains)
    _print_heads(console, {c.name: c.head for c in report.chains if c.ok})
    for problem in report.problems:
        console.print(f"[red]{problem}[/red]", highlight=False)
    if report.ok:
        console.print("[bold green]OK[/bold green]: every file and every chain verify")
    else:
        console.print(f"[bold red]BROKEN[/bold red]: {report.first_problem()}", highlight=False)


def _chain_cells(chain: ChainReport) -> tuple[str, str, str, str, str]:
    older = _unchained(chain)
    note = f"not chained (older version): {older} rows" if older else ""
    if chain.problem is None:
        return chain.name, "[green]OK[/green]", str(chain.count), _short(chain.head), note
    problem = chain.problem
    status = f"[red]{problem.kind}[/red] at seq {problem.seq}"
    entries = f"{chain.verified} of {chain.count} verified"
    finding = f"{problem.detail}; {note}" if note else problem.detail
    return chain.name, status, entries, _short(chain.head), finding


def _unchained(chain: ChainReport) -> int:
    """Leading rows written before their chain existed (only the signals chain has them)."""
    return chain.unchained if isinstance(chain, SignalsReport) else 0
