"""The audit's use-cases over a verified bundle: replay, reconcile, backtest.

Shared by the CLI and the HTTP API, which differ only in how they obtain the bundle and show
the answer. Each reads the bundle through the ports (`ports.py`) and judges with the pure
core; nothing here touches a file, a service or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from schemas import Urgency
from services.audit.core import steps
from services.audit.core.backtest import Backtest, diff
from services.audit.core.reconcile import (
    DEFAULT_ACK_WITHIN,
    DEFAULT_LATE_AFTER,
    Policy,
    Reconciliation,
    reconcile,
)
from services.audit.core.replayed import ReplayResult
from services.audit.core.routing import required
from services.audit.core.timeline import Timeline
from services.audit.ports import BundleRecords, JudgedBy, Opened, Replayer
from services.rules.published.model import TrialConfig


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


@dataclass(frozen=True, slots=True)
class AuditQueries:
    """The use-cases, bound to how a bundle is replayed and read and what judges it."""

    replayer: Replayer
    records: BundleRecords
    judged_by: JudgedBy

    def replay(
        self,
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
        return self.replayer(
            opened.path,
            as_of=as_of,
            config=self.configurations(opened, config),
            workers=workers,
            checkpoints=checkpoints,
        )

    def configurations(self, opened: Opened, config: Path | None) -> TrialConfig | Timeline:
        """The bundle's configuration history unless a file is given (or the bundle has none)."""
        if config is None:
            recorded = self.records.timeline(opened.path)
            if recorded is not None:
                return recorded
        return self.judged_by.trial_config(config)

    def reconcile(self, opened: Opened, query: ReconcileQuery) -> tuple[Reconciliation, datetime]:
        """Reconcile the opened bundle; returns the result and the moment it was judged at.

        The moment is `as_of` when given, else the snapshot's time (the manifest's created_at):
        a notification still within its allowance then is pending, not missing.
        """
        routing = self.judged_by.routing(query.routing)
        replayed = self.replay(opened, as_of=query.as_of, config=query.config,
                               workers=query.workers, checkpoints=query.checkpoints)  # fmt: skip
        trail = self.records.trail(opened.path, as_of=query.as_of)
        now = query.as_of or opened.manifest.created_at
        policy = Policy(
            now=now,
            late_after={**DEFAULT_LATE_AFTER, **(query.late_after or {})},
            ack_within=query.ack_within,
        )
        result = reconcile(
            [item.signal for item in replayed.signals],
            trail,
            required=lambda signal: required(signal, routing),
            policy=policy,
            journal=self.records.journal(opened.path, as_of=query.as_of),
        )
        return result, now

    def backtest(self, opened: Opened, query: BacktestQuery) -> Backtest:
        """Replay the full log with the live and the candidate rule set; diff the rule's signals."""
        live_config = self.configurations(opened, query.config)
        final = (
            live_config.activations[-1].config if isinstance(live_config, Timeline) else live_config
        )
        live_version = steps.check_version(final, query.rule_id, query.version)
        candidate_config = self._candidate(live_config, query)
        live = self.replayer(opened.path, as_of=None, config=live_config, workers=query.workers,
                             checkpoints=query.checkpoints)  # fmt: skip
        candidate = (
            live
            if candidate_config == live_config
            else self.replayer(opened.path, as_of=None, config=candidate_config,
                               workers=query.workers, checkpoints=query.checkpoints)
        )  # fmt: skip
        versions = (
            f"v{live_version} ({_named(live_config)})",
            f"v{query.version} ({_named(candidate_config)})",
        )
        window = (query.start, query.end)
        return diff(query.rule_id, live, candidate, window=window, versions=versions)

    def _candidate(
        self, live_config: TrialConfig | Timeline, query: BacktestQuery
    ) -> TrialConfig | Timeline:
        """The candidate version over the whole history.

        Under the candidate file given, or under each configuration the live rules had (the
        history's, or the one file).
        """

        def candidate_of(config: TrialConfig) -> TrialConfig:
            return steps.with_version(config, query.rule_id, query.version)

        if query.candidate_config is not None:
            return candidate_of(self.judged_by.trial_config(query.candidate_config))
        if isinstance(live_config, Timeline):
            return live_config.map(candidate_of)
        return candidate_of(live_config)


def _named(config: TrialConfig | Timeline) -> str:
    if isinstance(config, TrialConfig):
        return config.version
    return ", then ".join(a.config.version for a in config.activations)
