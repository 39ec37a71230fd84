"""Read-only HTTP audit API over exported bundles (shell): the audit commands for remote auditors.

`safetymon audit serve --bundles DIR` answers, for each bundle directory under DIR, the same
questions as the CLI: verify, replay as of a time, reconcile, backtest, and the download of
a bundle file. Nothing here writes a bundle, a service file or NATS; the only file written is
the query log. Every route needs an `auditor` (or `admin`) bearer token (kit/auth.py), and
every request, answered or refused, is appended to the query log (who, what, when, outcome).
`/openapi.json` needs the same token; the interactive pages are off (they load scripts from
a CDN and would be served to anyone). A bundle directory or file that is a symbolic link is
never served or listed, and error messages name bundles relative to `--bundles`.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures at run
# time, and the auth dependency is a local of `build_audit_api`, not a module global.
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse

from kit.auth import Principal
from kit.http_limits import BodyLimits
from services.audit.adapters.bundle_reader import read_manifest, verify_bundle
from services.audit.adapters.documents import (
    backtest_json,
    comparison_json,
    reconcile_json,
    replay_json,
    report_json,
)
from services.audit.adapters.live_signals import compare_bundle
from services.audit.adapters.local import local_queries
from services.audit.adapters.query_log import QueryLog
from services.audit.app import AuditQueries, BacktestQuery, ReconcileQuery
from services.audit.core.errors import (
    BrokenBundleError,
    BundleError,
    ConfigError,
    RoutingError,
    RuleVersionError,
)
from services.audit.core.manifest import ALL_FILES, MANIFEST_FILE
from services.audit.core.moments import parse_moment
from services.audit.ports import Opened

#: Bundle ids are directory names, never paths.
_BUNDLE_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DOWNLOADS: Final = frozenset({*ALL_FILES, MANIFEST_FILE})
Require = Callable[..., Principal]
Translated = Callable[[], AbstractContextManager[None]]


def build_audit_api(  # noqa: PLR0913 - one keyword per setting the routes close over
    root: Path,
    *,
    require: Require,
    query_log: QueryLog,
    config: Path | None = None,
    routing: Path | None = None,
    checkpoints: Path | None = None,
    queries: AuditQueries | None = None,
) -> FastAPI:
    """The FastAPI app; `require` is the auditor bearer dependency (kit.auth).

    `queries`: the use-cases the routes answer with (default: over bundles on this disk).

    `checkpoints`: a directory of verified replay checkpoints the queries start from and add
    to (each bundle's log has its own, by chain hash), so repeated as-of questions of a long
    log fold only what lies past the newest one they reach.
    """
    api = FastAPI(
        title="safetymon audit", version="1", openapi_url=None, docs_url=None, redoc_url=None
    )
    _log_every_request(api, query_log)
    api.add_middleware(BodyLimits)  # no route takes a body: a small budget is plenty
    auditor = Annotated[Principal, Depends(_remember(require))]
    _translated = _translator(root)
    ask = queries or local_queries()

    @api.get("/openapi.json", include_in_schema=False)
    def openapi(principal: auditor) -> dict[str, Any]:
        del principal
        return api.openapi()

    @api.get("/v1/audit/bundles")
    def bundles(principal: auditor) -> list[dict[str, Any]]:
        del principal  # required for access and logged by the middleware
        return _listing(root)

    @api.get("/v1/audit/bundles/{bundle_id}/verify")
    def verify(bundle_id: str, principal: auditor) -> dict[str, Any]:
        del principal
        path = _bundle(root, bundle_id)
        with _translated():
            manifest, report = verify_bundle(path)
        return report_json(Path(bundle_id), manifest, report)

    @api.get("/v1/audit/bundles/{bundle_id}/replay")
    def replay(
        bundle_id: str, principal: auditor, as_of: Annotated[str | None, Query()] = None
    ) -> dict[str, Any]:
        del principal
        opened = _opened(root, bundle_id, _translated)
        with _translated():
            result = ask.replay(
                opened, as_of=_moment(as_of), config=config, workers=1, checkpoints=checkpoints
            )
            comparison = compare_bundle(opened.path, result)
        document = replay_json(result, source=opened.described)
        document["live_signals"] = None if comparison is None else comparison_json(comparison)
        return document

    @api.get("/v1/audit/bundles/{bundle_id}/reconcile")
    def reconcile(
        bundle_id: str, principal: auditor, as_of: Annotated[str | None, Query()] = None
    ) -> dict[str, Any]:
        del principal
        opened = _opened(root, bundle_id, _translated)
        query = ReconcileQuery(as_of=_moment(as_of), config=config, routing=routing, workers=1,
                               checkpoints=checkpoints)  # fmt: skip
        with _translated():
            result, now = ask.reconcile(opened, query)
        return reconcile_json(result, source=opened.described, now=now)

    @api.get("/v1/audit/bundles/{bundle_id}/backtest")
    def backtest(
        bundle_id: str,
        principal: auditor,
        rule: Annotated[str, Query()],
        version: Annotated[int, Query(ge=1)],
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
    ) -> dict[str, Any]:
        del principal
        opened = _opened(root, bundle_id, _translated)
        query = BacktestQuery(rule_id=rule, version=version, config=config,
                              start=_moment(start), end=_moment(end), workers=1,
                              checkpoints=checkpoints)  # fmt: skip
        with _translated():
            result = ask.backtest(opened, query)
        return backtest_json(result, source=opened.described)

    @api.get("/v1/audit/bundles/{bundle_id}/files/{name}")
    def download(bundle_id: str, name: str, principal: auditor) -> FileResponse:
        del principal
        path = _bundle(root, bundle_id) / name
        if name not in _DOWNLOADS or path.is_symlink() or not path.is_file():
            raise HTTPException(404, "no such file in the bundle")
        if not path.resolve().is_relative_to(root.resolve()):
            raise HTTPException(404, "no such file in the bundle")  # e.g. a hard-linked parent
        return FileResponse(path, filename=name)

    return api


def _listing(root: Path) -> list[dict[str, Any]]:
    """Every readable bundle under `root` (never a symbolic link): id, creation, rows per file."""
    found = []
    listed = (p for p in root.iterdir() if _BUNDLE_ID.match(p.name) and not p.is_symlink())
    for path in sorted(p for p in listed if p.is_dir()):
        try:
            manifest = read_manifest(path)
        except BundleError:
            continue
        files = {name: entry.rows for name, entry in manifest.files.items()}
        found.append({"id": path.name, "created_at": manifest.created_at.isoformat(),
                      "rows": files})  # fmt: skip
    return found


def _remember(require: Require) -> Callable[..., Principal]:
    """Wrap the auth dependency so the query log can name who asked."""

    def dependency(
        request: Request, principal: Annotated[Principal, Depends(require)]
    ) -> Principal:
        request.state.principal = principal
        return principal

    return dependency


def _log_every_request(api: FastAPI, query_log: QueryLog) -> None:
    @api.middleware("http")
    async def record(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        principal: Principal | None = getattr(request.state, "principal", None)
        query_log.record(
            principal=principal,
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            status=response.status_code,
        )
        return response


def _bundle(root: Path, bundle_id: str) -> Path:
    path = root / bundle_id
    if not _BUNDLE_ID.match(bundle_id) or path.is_symlink():
        raise HTTPException(404, "no such bundle")
    if not (path / MANIFEST_FILE).is_file():
        raise HTTPException(404, "no such bundle")
    return path


def _opened(root: Path, bundle_id: str, translated: Translated) -> Opened:
    """A bundle verified before it is queried: a broken one is refused with its problem."""
    path = _bundle(root, bundle_id)
    with translated():
        manifest, report = verify_bundle(path)
    if not report.ok:
        raise HTTPException(409, f"the bundle does not verify: {report.first_problem()}")
    return Opened(path, manifest, {"bundle": bundle_id})


def _moment(text: str | None) -> datetime | None:
    try:
        return None if text is None else parse_moment(text)
    except ValueError as exc:
        # parse_moment says why: not ISO 8601, or an instant outside the years 1 to 9999.
        raise HTTPException(422, f"not a usable time: {text!r}: {exc}") from exc


def _translator(root: Path) -> Translated:
    """Turn the audit tools' errors into HTTP answers an auditor can act on.

    Messages name bundles relative to `root`: the server's own directories are nobody's
    business but its operator's.
    """
    prefixes = sorted({f"{root}{os.sep}", f"{root.absolute()}{os.sep}",
                       f"{root.resolve()}{os.sep}"}, key=len, reverse=True)  # fmt: skip

    def relative(exc: Exception) -> str:
        text = str(exc)
        for prefix in prefixes:
            text = text.replace(prefix, "")
        return text

    @contextmanager
    def translated() -> Iterator[None]:
        try:
            yield
        except BrokenBundleError as exc:
            raise HTTPException(409, relative(exc)) from exc
        except (RuleVersionError, ConfigError, RoutingError) as exc:
            raise HTTPException(422, relative(exc)) from exc
        except BundleError as exc:
            raise HTTPException(404, relative(exc)) from exc

    return translated
