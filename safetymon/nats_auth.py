"""Who may publish and subscribe what on NATS: one user per service and role, least privilege.

`grants(namespace)` is the permission matrix (README "NATS permissions"); the embedded
server of `safetymon up`/`demo` and the committed `deploy/nats/nats-server.conf` of the
compose file are both rendered from it by `render_authorization`, so they cannot drift.

Why each user has its own inbox prefix (`_INBOX_<user>`): pull consumers get their messages
and every request its reply on the client's inbox; with the usual shared `_INBOX.>` any
user could subscribe to it and read other services' deliveries (signals, delivery logs).
Services that answer requests reply through `allow_responses`, never a publish grant on
inboxes. JetStream's own replies come from the server and need no grant.

Passwords are generated per deployment (`load_or_create_passwords`): 0600 files in a 0700
directory under the data dir, never in the repository.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from kit.nats_security import NatsClientSettings
from schemas import NOTIFY_DURABLE, Subjects
from schemas.subjects import (
    CONSOLE_FACTS_DURABLE,
    CONSOLE_NOTIFY_DURABLE,
    CONSOLE_SIGNALS_DURABLE,
    NOTIFY_REPORTS_DURABLE,
    partition_snapshot_subject,
    rules_durable,
)

#: The services the supervisor runs, the CLI's operator, the auditor, the report publisher.
SERVICE_USERS: Final = ("ingest", "rules", "notify", "console")
USERS: Final = (*SERVICE_USERS, "admin", "auditor", "report")
AUTH_DIR: Final = "nats-auth"
_API: Final = "$JS.API"


@dataclass(frozen=True, slots=True)
class Grant:
    """One user's permissions; deny wins over allow (NATS semantics)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    deny_publish: tuple[str, ...] = ()
    responds: bool = False  # allow_responses: may reply to requests it received


def inbox_prefix(user: str) -> str:
    """The user's own reply-subject prefix (nats-py `inbox_prefix`)."""
    return f"_INBOX_{user}"


def _stream_admin(stream: str) -> tuple[str, ...]:
    # ensure_stream (kit/jetstream.py): look, then create when missing.
    return (f"{_API}.STREAM.INFO.{stream}", f"{_API}.STREAM.CREATE.{stream}")


def _durable(stream: str, durable: str) -> tuple[str, ...]:
    """Create/bind, pull from and acknowledge one durable pull consumer, and nothing else."""
    consumer = f"{stream}.{durable}"
    return (
        f"{_API}.CONSUMER.INFO.{consumer}",
        f"{_API}.CONSUMER.DURABLE.CREATE.{consumer}",  # nats-py for durable_name
        f"{_API}.CONSUMER.CREATE.{consumer}",  # and the 2.9+ form, with or without filter
        f"{_API}.CONSUMER.CREATE.{consumer}.>",
        f"{_API}.CONSUMER.MSG.NEXT.{consumer}",
        f"{_API}.STREAM.MSG.GET.{stream}",  # LaneConsumer re-reads what it held at a crash
        f"$JS.ACK.{consumer}.>",
    )


def grants(namespace: str, partitions: int = 1) -> dict[str, Grant]:
    """The permission matrix of a deployment namespace with `partitions` rules partitions."""
    s = Subjects(namespace)
    facts, signals, reports = s.facts_stream, s.signals_stream, s.reports_stream
    notify_stream = s.notify_stream
    # Each partition has its rules durable and its owner answers its own snapshot requests.
    rules_durables = tuple(rules_durable(k, partitions) for k in range(partitions))
    rules_snapshots = tuple(
        partition_snapshot_subject(f"{namespace}.audit.rules.snapshot", k, partitions)
        for k in range(partitions)
    )
    notify_requests = tuple(
        f"{namespace}.notify.{name}" for name in ("ack", "log", "state", "digests.flush")
    )
    snapshots = (f"{namespace}.notify.audit.snapshot", *rules_snapshots)
    anchors, anchor_head = f"{namespace.upper()}_ANCHORS", f"{namespace}.anchor.ingest.head"
    # An ordered (ephemeral, flow-controlled) reader of the published heads: audit export.
    read_anchors = (
        f"{_API}.STREAM.INFO.{anchors}",
        f"{_API}.CONSUMER.CREATE.{anchors}",
        f"{_API}.CONSUMER.CREATE.{anchors}.>",
        f"{_API}.CONSUMER.DELETE.{anchors}.*",
        f"$JS.FC.{anchors}.>",
    )
    durables = (
        f"{signals}.{NOTIFY_DURABLE}",
        f"{reports}.{NOTIFY_REPORTS_DURABLE}",
        *(f"{facts}.{durable}" for durable in rules_durables),
        f"{facts}.{CONSOLE_FACTS_DURABLE}",
        f"{signals}.{CONSOLE_SIGNALS_DURABLE}",
        f"{notify_stream}.{CONSOLE_NOTIFY_DURABLE}",
    )
    return {
        "ingest": Grant(
            publish=(
                s.facts_filter,
                *_stream_admin(facts),
                # the log's head, published outside the facts stream (adapters/head_anchor.py)
                anchor_head,
                *_stream_admin(anchors),
                f"{_API}.STREAM.MSG.GET.{anchors}",
            ),
            subscribe=(f"{inbox_prefix('ingest')}.>",),
        ),
        "rules": Grant(
            publish=(
                s.signals_filter,
                *_stream_admin(facts),
                *_stream_admin(signals),
                *(p for durable in rules_durables for p in _durable(facts, durable)),
            ),
            subscribe=(f"{inbox_prefix('rules')}.>", *rules_snapshots),
            responds=True,
        ),
        "notify": Grant(
            publish=(
                *_stream_admin(signals),
                *_stream_admin(reports),
                *_durable(signals, NOTIFY_DURABLE),
                *_durable(reports, NOTIFY_REPORTS_DURABLE),
                # its facts, published by the trail relay (adapters/trail_relay.py), which
                # also reads the stream's last message to resume after it
                s.notify_subject("*"),
                *_stream_admin(notify_stream),
                f"{_API}.STREAM.MSG.GET.{notify_stream}",
            ),
            subscribe=(f"{inbox_prefix('notify')}.>", f"{namespace}.notify.>"),
            responds=True,
        ),
        # The console: reads the three streams through its own durables, nothing else.
        "console": Grant(
            publish=(
                *_stream_admin(facts),
                *_stream_admin(signals),
                *_stream_admin(notify_stream),
                *_durable(facts, CONSOLE_FACTS_DURABLE),
                *_durable(signals, CONSOLE_SIGNALS_DURABLE),
                *_durable(notify_stream, CONSOLE_NOTIFY_DURABLE),
            ),
            subscribe=(f"{inbox_prefix('console')}.>",),
        ),
        # The operator's CLI and the supervisor: notify's requests (ack included), snapshot
        # requests, read-only JetStream views, and ephemeral readers of the signals stream
        # (the demo's summary) -- never the services' durables, never a fact or a signal.
        "admin": Grant(
            publish=(
                *notify_requests,
                *snapshots,
                f"{_API}.INFO",
                f"{_API}.STREAM.INFO.*",
                f"{_API}.CONSUMER.INFO.*.*",
                f"{_API}.STREAM.MSG.GET.*",
                f"{_API}.CONSUMER.CREATE.{signals}",
                f"{_API}.CONSUMER.CREATE.{signals}.*",  # nats-py names ephemerals itself
                f"{_API}.CONSUMER.MSG.NEXT.{signals}.*",
                f"{_API}.CONSUMER.DELETE.{signals}.*",
                f"$JS.ACK.{signals}.*.>",
                *read_anchors,
            ),
            deny_publish=tuple(
                pattern
                for durable in durables
                for pattern in (
                    f"{_API}.CONSUMER.CREATE.{durable}",
                    f"{_API}.CONSUMER.DURABLE.CREATE.{durable}",
                    f"{_API}.CONSUMER.MSG.NEXT.{durable}",
                    f"{_API}.CONSUMER.DELETE.{durable}",
                    f"$JS.ACK.{durable}.>",
                )
            ),
            subscribe=(f"{inbox_prefix('admin')}.>",),
        ),
        "auditor": Grant(
            publish=(*snapshots, f"{namespace}.notify.log", *read_anchors),
            subscribe=(f"{inbox_prefix('auditor')}.>",),
        ),
        "report": Grant(
            publish=(s.reports_filter, *_stream_admin(reports)),
            subscribe=(f"{inbox_prefix('report')}.>",),
        ),
    }


def _list(subjects: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(subject) for subject in subjects) + "]"


def render_authorization(matrix: Mapping[str, Grant], passwords: Mapping[str, str]) -> str:
    """An `authorization { users = [...] }` block for nats-server.

    `passwords` maps each user to a quoted literal, or to `$NAME` (an environment variable
    the server resolves at start: the compose file's way of keeping secrets out of files).
    """
    lines = ["authorization {", "  users = ["]
    for user, grant in matrix.items():
        password = passwords[user]
        value = password if password.startswith("$") else json.dumps(password)
        publish = f"allow: {_list(grant.publish)}"
        if grant.deny_publish:
            publish += f", deny: {_list(grant.deny_publish)}"
        responses = ", allow_responses: true" if grant.responds else ""
        lines += [
            f"    {{ user: {json.dumps(user)}, password: {value}, permissions: {{",
            f"        publish: {{ {publish} }}",
            f"        subscribe: {{ allow: {_list(grant.subscribe)} }}{responses} }} }}",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def load_or_create_passwords(directory: Path) -> dict[str, str]:
    """Each user's password from `<directory>/<user>.password`; missing ones are generated.

    The directory is 0700 and each file 0600 (created so, never readable in between).
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    passwords = {}
    for user in USERS:
        path = directory / f"{user}.password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(32))
        passwords[user] = path.read_text(encoding="utf-8").strip()
    return passwords


def client_settings(user: str, password: str) -> NatsClientSettings:
    """Client settings of `user` (the same as `client_env`, for a client in this process)."""
    return NatsClientSettings(
        nats_user=user, nats_password=SecretStr(password), nats_inbox_prefix=inbox_prefix(user)
    )


def operator_settings(data_dir: Path) -> NatsClientSettings:
    """What the CLI connects with: $SAFETYMON_NATS_* when given, else the admin user's file.

    So `safetymon ack` works against `safetymon up`'s embedded server with only
    $SAFETYMON_NATS_URL set, and an operator's credentials for an external server win.
    """
    configured = NatsClientSettings()
    admin = data_dir / AUTH_DIR / "admin.password"
    if configured.nats_security() is not None or not admin.exists():
        return configured
    return client_settings("admin", admin.read_text(encoding="utf-8").strip())


def client_env(user: str, password: str) -> dict[str, str]:
    """Environment that makes a safetymon process connect as `user` (kit/nats_security.py)."""
    return {
        "SAFETYMON_NATS_USER": user,
        "SAFETYMON_NATS_PASSWORD": password,
        "SAFETYMON_NATS_INBOX_PREFIX": inbox_prefix(user),
    }
