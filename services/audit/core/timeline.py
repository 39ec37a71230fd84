"""Which trial configuration was live at each log position (pure).

The rules service records each configuration it starts evaluating under, with the log
position of the first fact it evaluated under it (`rules_config_history.parquet`: the
configuration file's text and its sha256). A replay folds each fact with the configuration
live at that fact's position, so an as-of replay re-derives the signals with the rule
versions and thresholds that were live then, across a switch from v1 to v2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.rules.published.model import TrialConfig


@dataclass(frozen=True, slots=True)
class Activation:
    """A configuration and the first log position the live rules evaluated under it."""

    from_seq: int
    config: TrialConfig
    sha256: str = ""  # of the configuration file's text, when the history recorded it


@dataclass(frozen=True, slots=True)
class Timeline:
    """The configurations in force over the log, by first log position (ascending).

    Before the first activation (a log older than the history) the first one applies: the
    replay says so (`recorded_from`).
    """

    activations: tuple[Activation, ...]
    #: True when read from the bundle's history; False for one configuration given for the
    #: whole log (`--config`, or no history in the bundle).
    recorded: bool = False

    def __post_init__(self) -> None:
        if not self.activations:
            raise ValueError("a configuration timeline needs at least one configuration")
        seqs = [a.from_seq for a in self.activations]
        if seqs != sorted(set(seqs)):
            raise ValueError(f"configuration activations out of order: {seqs}")

    @classmethod
    def single(cls, config: TrialConfig) -> Timeline:
        """One configuration for every position."""
        return cls((Activation(0, config),))

    @property
    def recorded_from(self) -> int:
        """The first log position the history covers."""
        return self.activations[0].from_seq

    def at(self, seq: int) -> TrialConfig:
        """The configuration live at log position `seq`."""
        chosen = self.activations[0].config
        for activation in self.activations:
            if activation.from_seq > seq:
                break
            chosen = activation.config
        return chosen

    def switches(self) -> tuple[int, ...]:
        """Positions where the configuration changes (after the first)."""
        return tuple(a.from_seq for a in self.activations[1:])

    def upto(self, seq: int | None) -> tuple[Activation, ...]:
        """The activations in force at or before `seq` (all of them for None)."""
        if seq is None:
            return self.activations
        return tuple(a for a in self.activations if a.from_seq <= seq) or self.activations[:1]

    def map(self, change: Callable[[TrialConfig], TrialConfig]) -> Timeline:
        """The same timeline with every configuration changed (a backtest's candidate)."""
        changed = []
        for a in self.activations:
            config = change(a.config)
            changed.append(Activation(a.from_seq, config, a.sha256 if config == a.config else ""))
        return Timeline(tuple(changed), recorded=self.recorded)
