"""The audit queries over a verified bundle, shared by the CLI and the HTTP API (shell).

Each query reads the bundle's files only and returns plain results; the CLI and the HTTP API
differ only in how they obtain the bundle and show the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from schemas import Urgency
from services.audit import _engine, _notify
from services.audit.backtest import Backtest, diff
from services.audit.configs import Timeline, read_timeline
from services.audit.journal import read_journal
from services.audit.reconcile import (
    DEFAULT_ACK_WITHIN,
    DEFAULT_LATE_AFTER,
    Policy,
    Reconciliation,
    reconcile,
)
from services.audit.replay import ReplayResult, replay_bundle
from services.audit.source import Opened
from services.audit.trail import read_trail
from services.rules.core.config import TrialConfig


@dataclass(frozen=True, slots=True)
class ReconcileQuery:
    """What a reconcile is asked: the moment, the files in force and the allowances."""

    as_of: datetime | None = None
    config: Path | None = None
    routing: Path | None = None
    late_after: Mapping[Urgency, timedelta] | None = None
    ack_within: timedelta = DEFAULT_ACK_WITHIN
    workers: int | None = None
    checkpoints: Path | None = None


def run_replay(
    opened: Opened,
    *,
    as_of: datetime | None,
    config: Path | None,
    workers: int | None = None,
    checkpoints: Path | None = None,
) -> ReplayResult:
    """Replay the opened bundle as of `as_of`.

    Each fact is folded with the configuration live at its position, from the bundle's
    configuration history; `config` instead folds the whole log with that one file (and a
    bundle without a history with the rules service's default file).
    `checkpoints`: a directory of verified replay checkpoints to start from and add to.
    """
    return replay_bundle(
        opened.path,
        as_of=as_of,
        config=configurations(opened, config),
        workers=workers,
        checkpoints=checkpoints,
    )


def configurations(opened: Opened, config: Path | None) -> TrialConfig | Timeline:
    """The bundle's configuration history unless a file is given (or the bundle has none)."""
    if config is None:
        recorded = read_timeline(opened.path)
        if recorded is not None:
            return recorded
    return _engine.load_config(config)


def run_reconcile(opened: Opened, query: ReconcileQuery) -> tuple[Reconciliation, datetime]:
    """Reconcile the opened bundle; returns the result and the moment it was judged at.

    The moment is `as_of` when given, else the snapshot's time (the manifest's created_at):
    a notification still within its allowance then is pending, not missing.
    """
    routing = _notify.load_routing(query.routing)
    replayed = run_replay(opened, as_of=query.as_of, config=query.config, workers=query.workers,
                          checkpoints=query.checkpoints)  # fmt: skip
    trail = read_trail(opened.path, as_of=query.as_of)
    now = query.as_of or opened.manifest.created_at
    policy = Policy(
        now=now,
        late_after={**DEFAULT_LATE_AFTER, **(query.late_after or {})},
        ack_within=query.ack_within,
    )
    result = reconcile(
        [item.signal for item in replayed.signals],
        trail,
        required=lambda signal: _notify.required(signal, routing),
        policy=policy,
        journal=read_journal(opened.path, as_of=query.as_of),
    )
    return result, now


def parse_allowance(text: str) -> tuple[Urgency, timedelta]:
    """`U0=15m`, `U1=2h`, `U2=1d` or `U0=90s` as an urgency and an allowance.

    Raises:
        ValueError: not URGENCY=NUMBER followed by s, m, h or d.

    """
    urgency, _, amount = text.partition("=")
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if not amount or amount[-1] not in units:
        raise ValueError(f"{text!r}: expected e.g. U0=15m (units s, m, h, d)")
    return Urgency(urgency.strip().upper()), timedelta(**{units[amount[-1]]: float(amount[:-1])})


@dataclass(frozen=True, slots=True)
class BacktestQuery:
    """A candidate: a rule, its version, optionally other thresholds; and the diff window."""

    rule_id: str
    version: int
    config: Path | None = None
    candidate_config: Path | None = None
    start: datetime | None = None
    end: datetime | None = None
    workers: int | None = None
    checkpoints: Path | None = None


def run_backtest(opened: Opened, query: BacktestQuery) -> Backtest:
    """Replay the full log with the live and the candidate rule set; diff the rule's signals."""
    live_config = configurations(opened, query.config)
    final = live_config.activations[-1].config if isinstance(live_config, Timeline) else live_config
    live_version = _engine.check_version(final, query.rule_id, query.version)

    def candidate_of(config: TrialConfig) -> TrialConfig:
        return _engine.with_version(config, query.rule_id, query.version)

    # The candidate version runs over the whole history: under the candidate file given, or
    # under each configuration the live rules had (the history's, or the one file).
    candidate_config: TrialConfig | Timeline
    if query.candidate_config is not None:
        candidate_config = candidate_of(_engine.load_config(query.candidate_config))
    elif isinstance(live_config, Timeline):
        candidate_config = live_config.map(candidate_of)
    else:
        candidate_config = candidate_of(live_config)
    workers, checkpoints = query.workers, query.checkpoints
    live = replay_bundle(
        opened.path, as_of=None, config=live_config, workers=workers, checkpoints=checkpoints
    )
    candidate = (
        live
        if candidate_config == live_config
        else replay_bundle(
            opened.path,
            as_of=None,
            config=candidate_config,
            workers=workers,
            checkpoints=checkpoints,
        )
    )
    versions = (
        f"v{live_version} ({_named(live_config)})",
        f"v{query.version} ({_named(candidate_config)})",
    )
    return diff(query.rule_id, live, candidate, window=(query.start, query.end), versions=versions)


def _named(config: TrialConfig | Timeline) -> str:
    if isinstance(config, TrialConfig):
        return config.version
    return ", then ".join(a.config.version for a in config.activations)
