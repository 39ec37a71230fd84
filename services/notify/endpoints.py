"""What notify answers: its HTTP API and its NATS request/reply subjects.

HTTP serves the acknowledgement links the emails carry, the delivery log and the metrics;
NATS answers audit snapshot, acknowledge, delivery-log, state and flush requests, so the CLI
and the audit export reach the running service without opening its DuckDB file.
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.aio.subscription import Subscription

from kit.auth import TokenStore
from kit.metrics import Observability
from kit.snapshots import Export
from services.notify.adapters.audit_export import build_snapshot_responder, snapshot_subject
from services.notify.adapters.http_api import build_http_app
from services.notify.adapters.http_server import HttpServer
from services.notify.adapters.nats_requests import (
    ack_subject,
    build_responders,
    flush_digests_subject,
    log_subject,
    replying,
    state_subject,
)
from services.notify.app.alerts import Acknowledger
from services.notify.app.queries import NotifyQueries
from services.notify.config import Settings
from services.notify.ports import AlertStore, Logger


def http_server(
    settings: Settings,
    *,
    acknowledger: Acknowledger,
    store: AlertStore,
    observability: Observability,
    log: Logger,
) -> HttpServer:
    """The HTTP API (not started): acknowledgement links, the delivery log, metrics."""
    bootstrap = settings.bootstrap_token
    tokens = TokenStore(
        settings.tokens_path,
        bootstrap_secret=bootstrap.get_secret_value() if bootstrap else None,
    )
    if bootstrap is not None:
        # Visible in every deployment's log: a bootstrap admin is for demos and tests.
        log.warning("bootstrap_token_enabled", tokens_file=str(settings.tokens_path))
    api = build_http_app(acknowledger, store, tokens=tokens, observability=observability)
    return HttpServer(api, host=settings.notify_http_host, port=settings.notify_http_port)


async def subscribe_requests(  # noqa: PLR0913 - what the subjects answer with, keyword-only
    nc: Client,
    into: list[Subscription],
    *,
    settings: Settings,
    export: Export,
    acknowledger: Acknowledger,
    store: AlertStore,
    queries: NotifyQueries,
    log: Logger,
) -> None:
    """Answer snapshot, ack, delivery-log, state and flush requests; subscriptions go `into`.

    Each subscription is added as it is made, so a failure part way leaves nothing the
    caller cannot unsubscribe.
    """
    namespace = settings.namespace
    exports = settings.data_dir / "exports"
    snapshot = build_snapshot_responder(export, default_root=exports, log=log)
    responders = build_responders(acknowledger, store, log=log)
    # state and flush are for a caller in another process (the supervised demo).
    for subject, respond in (
        (snapshot_subject(namespace), snapshot),
        (ack_subject(namespace), responders["ack"]),
        (log_subject(namespace), responders["log"]),
        (state_subject(namespace), replying(queries.state, log)),
        (flush_digests_subject(namespace), replying(queries.flushed, log)),
    ):
        into.append(await nc.subscribe(subject, cb=respond))


async def unsubscribe(subs: list[Subscription], *, log: Logger) -> None:
    """End the request subscriptions; a failure is logged (the connection closes next)."""
    for sub in subs:
        try:
            await sub.unsubscribe()
        except Exception as exc:  # the connection closes next anyway; the error is logged
            log.warning("snapshot_unsubscribe_failed", error=type(exc).__name__)
