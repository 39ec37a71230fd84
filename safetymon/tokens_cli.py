"""`safetymon tokens`: create, list and revoke the bearer tokens of the HTTP APIs (CLI shell).

The token file is `SAFETYMON_TOKENS_FILE`, or `tokens.json` in `SAFETYMON_DATA_DIR`; running
services see a change at their next request, so a revocation needs no restart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kit.auth import AuthSettings, Role, TokenStore, TokenStoreError
from safetymon._console import output_console

tokens_app = typer.Typer(
    help="Bearer tokens of the HTTP APIs: stored hashed, each with one role.",
    no_args_is_help=True,
)
_err = Console(stderr=True)

TokensFile = Annotated[
    Path | None,
    typer.Option(
        "--tokens-file",
        help="Token file (default: $SAFETYMON_TOKENS_FILE, else $SAFETYMON_DATA_DIR/tokens.json).",
    ),
]


def _store(tokens_file: Path | None) -> TokenStore:
    return TokenStore(tokens_file or AuthSettings().tokens_path)


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A code naming the token's holder, e.g. site-1-edc.")],
    role: Annotated[Role, typer.Option(help="What the token may do.")],
    site: Annotated[
        str | None, typer.Option(help="The site, for the per-site roles submitter/investigator.")
    ] = None,
    tokens_file: TokensFile = None,
) -> None:
    """Create a token and print it once as JSON; only its SHA-256 is kept."""
    try:
        principal, secret = _store(tokens_file).create(name, role, site=site)
    except TokenStoreError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    typer.echo(
        json.dumps(
            {
                "token_id": principal.token_id,
                "name": principal.name,
                "role": principal.role.value,
                "site": principal.site,
                "token": secret,
            }
        )
    )
    _err.print("The token is shown only now: hand it over as SAFETYMON_TOKEN, then forget it.")


@tokens_app.command("list")
def list_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout.")] = False,
    tokens_file: TokensFile = None,
) -> None:
    """List the tokens that are not revoked (never their secrets)."""
    try:
        principals = _store(tokens_file).list()
    except TokenStoreError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    if as_json:
        rows = [
            {"token_id": p.token_id, "name": p.name, "role": p.role.value, "site": p.site}
            for p in principals
        ]
        typer.echo(json.dumps(rows))
        return
    table = Table("token id", "name", "role", "site")
    for p in principals:
        table.add_row(p.token_id, p.name, p.role.value, p.site or "")
    output_console().print(table)


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The id shown by `tokens list`.")],
    tokens_file: TokensFile = None,
) -> None:
    """Revoke a token; running services refuse it from their next request on."""
    try:
        _store(tokens_file).revoke(token_id)
    except TokenStoreError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    _err.print(f"revoked {token_id}")
