"""Bearer tokens, roles and a FastAPI dependency shared by every HTTP API (adapter kit).

Tokens live hashed in one JSON file (`<data_dir>/tokens.json` unless `SAFETYMON_TOKENS_FILE`
says otherwise). The `safetymon tokens` command writes it while services run, so it is not a
DuckDB file (one process per DuckDB file): a writer takes an advisory lock, writes a temporary
file and renames it over the old one; readers re-read it whenever its identity changes.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit._token_file import TokenFileError, read_rows, write_rows

#: Token names and sites end up in the log's `actor` field and in log lines: codes only.
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
#: Prefix that makes a safetymon secret recognisable to secret scanners and humans.
_SECRET_PREFIX = "smt_"  # noqa: S105 -- a public prefix, not a secret
BOOTSTRAP_NAME = "bootstrap"
_MIN_BOOTSTRAP_CHARS = 16
_REALM = 'Bearer realm="safetymon"'
log = structlog.get_logger(__name__)


class Role(StrEnum):
    """What a token may do; `admin` may do everything."""

    submitter = "submitter"
    safety_officer = "safety_officer"
    investigator = "investigator"
    dsmb = "dsmb"
    auditor = "auditor"
    admin = "admin"


#: Roles whose reach is one site: a token of these roles names its site.
SITE_ROLES = frozenset({Role.submitter, Role.investigator})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id and name, its role, and its site for per-site roles."""

    token_id: str
    name: str
    role: Role
    site: str | None

    @property
    def actor(self) -> str:
        """The log's `actor` for everything this principal submits."""
        return f"token:{self.name}"


class TokenStoreError(Exception):
    """The token file is unreadable or a request to change it is invalid."""


class UnknownTokenError(TokenStoreError, LookupError):
    """No token has this id."""


@dataclass(frozen=True, slots=True)
class _Record:
    principal: Principal
    sha256: str
    created_at: str
    revoked_at: str | None


class TokenStore:
    """Hashed bearer tokens in a JSON file that several processes read and the CLI writes.

    Args:
        path: the token file; it need not exist yet (no tokens).
        bootstrap_secret: accepted as an `admin` credential besides the file's tokens. Meant for
            a first look, demos and tests (real tokens come from `safetymon tokens create`,
            which writes the file and needs no credential); leave it unset in production.

    """

    def __init__(self, path: Path, *, bootstrap_secret: str | None = None) -> None:
        if bootstrap_secret is not None and len(bootstrap_secret) < _MIN_BOOTSTRAP_CHARS:
            raise TokenStoreError(
                f"the bootstrap token needs at least {_MIN_BOOTSTRAP_CHARS} characters"
            )
        self.path = path
        self._bootstrap = _digest(bootstrap_secret) if bootstrap_secret else None
        self._lock = threading.Lock()
        self._identity: tuple[int, int, int] | None = None
        self._records: tuple[_Record, ...] = ()

    def create(self, name: str, role: Role, site: str | None = None) -> tuple[Principal, str]:
        """Add a token; return its principal and its secret, which is never stored or shown again.

        Raises:
            TokenStoreError: the name is not a code or was ever used, or the site does not fit
                the role (per-site roles need one, the others take none).

        """
        role = Role(role)
        _check_new(name, role, site)
        secret = _SECRET_PREFIX + secrets.token_urlsafe(32)
        principal = Principal(token_id=secrets.token_hex(8), name=name, role=role, site=site)
        with self._locked_file() as records:
            # Names are never reused, so `token:<name>` in the log names exactly one token.
            if any(r.principal.name == name for r in records) or name == BOOTSTRAP_NAME:
                raise TokenStoreError(f"a token named {name!r} exists or existed: pick another")
            records.append(_Record(principal, _digest(secret), _now(), None))
        return principal, secret

    def list(self) -> list[Principal]:
        """The tokens that are not revoked, oldest first."""
        return [r.principal for r in self._current() if r.revoked_at is None]

    def revoke(self, token_id: str) -> None:
        """Revoke a token at once for every process that reads the file; revoking twice is a no-op.

        Raises:
            UnknownTokenError: no token has this id.

        """
        with self._locked_file() as records:
            for index, record in enumerate(records):
                if record.principal.token_id == token_id:
                    if record.revoked_at is None:
                        records[index] = _Record(
                            record.principal, record.sha256, record.created_at, _now()
                        )
                    return
            raise UnknownTokenError(f"no token has id {token_id!r}")

    def authenticate(self, secret: str) -> Principal | None:
        """The principal whose live token is `secret`, or None."""
        digest = _digest(secret)
        found: Principal | None = None
        # Compare against every record, in constant time each, so timing reveals nothing.
        for record in self._current():
            if hmac.compare_digest(record.sha256, digest) and record.revoked_at is None:
                found = record.principal
        if self._bootstrap is not None and hmac.compare_digest(self._bootstrap, digest):
            found = Principal(
                token_id=BOOTSTRAP_NAME, name=BOOTSTRAP_NAME, role=Role.admin, site=None
            )
        return found

    def _current(self) -> tuple[_Record, ...]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._identity, self._records = None, ()
                return ()
            # A rename gives a new inode, so a change is seen even within one mtime tick.
            identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if identity != self._identity:
                self._records = tuple(_read(self.path))
                self._identity = identity
            return self._records

    @contextlib.contextmanager
    def _locked_file(self) -> Iterator[builtins.list[_Record]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = _read(self.path) if self.path.exists() else []
            yield records
            _write(self.path, records)


class AuthSettings(BaseSettings):
    """Where the token file is and the optional bootstrap credential (environment SAFETYMON_)."""

    model_config = SettingsConfigDict(env_prefix="SAFETYMON_", frozen=True, extra="ignore")

    data_dir: Path = Path("data")
    tokens_file: Path | None = None
    bootstrap_token: SecretStr | None = None

    @field_validator("bootstrap_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < _MIN_BOOTSTRAP_CHARS:
            raise ValueError(f"needs at least {_MIN_BOOTSTRAP_CHARS} characters")
        return value

    @property
    def tokens_path(self) -> Path:
        """The token file: SAFETYMON_TOKENS_FILE, or tokens.json in the data directory."""
        return self.tokens_file or self.data_dir / "tokens.json"

    def store(self) -> TokenStore:
        """The token store these settings describe."""
        bootstrap = self.bootstrap_token.get_secret_value() if self.bootstrap_token else None
        return TokenStore(self.tokens_path, bootstrap_secret=bootstrap)


_bearer = HTTPBearer(auto_error=False, description="A token from `safetymon tokens create`.")


def bearer_dependency(store: TokenStore, *roles: Role) -> Callable[..., Principal]:
    """A FastAPI dependency that returns the caller's principal if its role is in `roles`.

    Answers 401 (with `WWW-Authenticate: Bearer`) when the credential is missing, unknown or
    revoked, 403 when the role is not allowed, 503 when the token file cannot be read.
    `admin` is always allowed.
    """
    allowed = frozenset(roles) | {Role.admin}

    def require(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        # Refusals are logged for whoever watches for probing; the presented secret never is.
        where = {"method": request.method, "path": request.url.path}
        if credentials is None:
            log.warning("http_auth_refused", reason="no bearer token", **where)
            raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": _REALM})
        try:
            principal = store.authenticate(credentials.credentials)
        except TokenStoreError as exc:
            log.exception("token_store_unreadable", tokens_file=str(store.path), **where)
            raise HTTPException(503, "the token store cannot be read") from exc
        if principal is None:
            log.warning("http_auth_refused", reason="unknown or revoked token", **where)
            raise HTTPException(
                401,
                "the bearer token is unknown or revoked",
                {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )
        if principal.role not in allowed:
            log.warning(
                "http_role_forbidden", actor=principal.actor, role=principal.role.value, **where
            )
            raise HTTPException(
                403, f"role {principal.role.value} may not do this: needs {_names(allowed)}"
            )
        return principal

    return require


def _names(roles: frozenset[Role]) -> str:
    return " or ".join(sorted(r.value for r in roles))


def _check_new(name: str, role: Role, site: str | None) -> None:
    if not _CODE.match(name):
        raise TokenStoreError(
            "a token name is a code (letters, digits, '_.:-', at most 64), never a person's name"
        )
    if role in SITE_ROLES and site is None:
        raise TokenStoreError(f"role {role.value} is per site: give its site")
    if role not in SITE_ROLES and site is not None:
        raise TokenStoreError(f"role {role.value} is not per site: give no site")
    if site is not None and not _CODE.match(site):
        raise TokenStoreError("a site is a code (letters, digits, '_.:-', at most 64)")


def _digest(secret: str) -> str:
    # Secrets are 256 random bits, so a fast hash is enough: no dictionary can reach them.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _read(path: Path) -> list[_Record]:
    try:
        return [_from_row(row) for row in read_rows(path)]
    except TokenFileError as exc:
        raise TokenStoreError(str(exc)) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenStoreError(f"{path}: unreadable token file ({type(exc).__name__})") from exc


def _from_row(row: dict[str, Any]) -> _Record:
    principal = Principal(
        token_id=str(row["token_id"]),
        name=str(row["name"]),
        role=Role(row["role"]),
        site=None if row["site"] is None else str(row["site"]),
    )
    return _Record(principal, str(row["sha256"]), str(row["created_at"]), row["revoked_at"])


def _write(path: Path, records: list[_Record]) -> None:
    write_rows(
        path,
        [
            {
                "token_id": r.principal.token_id,
                "name": r.principal.name,
                "role": r.principal.role.value,
                "site": r.principal.site,
                "sha256": r.sha256,
                "created_at": r.created_at,
                "revoked_at": r.revoked_at,
            }
            for r in records
        ],
    )


def bearer_headers(token: str | None = None) -> dict[str, str]:
    """The Authorization header a client sends: `token`, else $SAFETYMON_TOKEN, else none."""
    token = token or os.environ.get("SAFETYMON_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}
