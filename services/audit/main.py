"""Composition root of the audit: `build_app` for `audit serve`, `build_queries` for the CLI.

Every dependency can be handed in (`Deps`); what is not is built from the settings: the
auditor bearer check from the token store (kit.auth), the query log under the bundles
directory, and the use-cases over bundles on this machine's disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from kit.auth import AuthSettings, Role, bearer_dependency
from services.audit.adapters.http_api import Require, build_audit_api
from services.audit.adapters.local import local_queries
from services.audit.adapters.query_log import QueryLog
from services.audit.app import AuditQueries
from services.audit.config import Settings


@dataclass(frozen=True, slots=True)
class Deps:
    """Dependencies to use instead of those built from the settings (None: build it)."""

    require: Require | None = None
    query_log: QueryLog | None = None
    queries: AuditQueries | None = None


def build_queries(deps: Deps | None = None) -> AuditQueries:
    """The use-cases: `deps.queries`, else over bundles on this machine's disk."""
    given = None if deps is None else deps.queries
    return given or local_queries()


def build_app(settings: Settings | None = None, deps: Deps | None = None) -> FastAPI:
    """The read-only audit HTTP API over the bundles under `settings.bundles`."""
    settings = settings or Settings()  # bundles from the environment (SAFETYMON_AUDIT_BUNDLES)
    deps = deps or Deps()
    # SAFETYMON_TOKENS_FILE or <data dir>/tokens.json; every route needs an auditor token.
    require = deps.require or bearer_dependency(AuthSettings().store(), Role.auditor)
    return build_audit_api(
        settings.bundles,
        require=require,
        query_log=deps.query_log or QueryLog(settings.query_log_path),
        config=settings.trial_config,
        routing=settings.routing,
        checkpoints=settings.checkpoints,
        queries=build_queries(deps),
    )
