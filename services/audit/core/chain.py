"""Value types of chain verification (pure): rows in, breaks and reports out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

BreakKind = Literal["edited", "deleted", "inserted", "reordered", "truncated"]


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One entry as stored: position, hashed bytes, links, and columns copied from the content.

    `columns` maps dotted paths into the content JSON (`payload.signal_id`) to the value a
    queryable column holds; a column that disagrees with the hashed content is an edit the
    hashes alone would miss. `claimed` holds the chain fields a wire form repeats inside.
    """

    seq: int
    content: bytes
    prev_hash: str
    hash: str
    columns: Mapping[str, object] = field(default_factory=dict)
    claimed: tuple[object, object, object] | None = None


@dataclass(frozen=True, slots=True)
class Expected:
    """What the manifest says the chain holds."""

    rows: int
    last_seq: int | None
    head: str


@dataclass(frozen=True, slots=True)
class Break:
    """The first place the chain does not verify."""

    kind: BreakKind
    seq: int | None  # the chain position (seq) that is wrong
    position: int  # 0-based row in the file where verification stops
    detail: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Outcome of one chain: OK with count and head, or the first break."""

    name: str
    count: int  # rows in the file
    verified: int  # entries verified before the first break (all of them when OK)
    head: str  # hash of the last verified entry
    problem: Break | None = None

    @property
    def ok(self) -> bool:
        """True when every entry verified and the manifest agrees."""
        return self.problem is None


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One bundle file against its manifest entry."""

    name: str
    expected_sha256: str | None
    actual_sha256: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file is present and its sha256 is the manifest's."""
        return self.problem is None


@dataclass(frozen=True, slots=True)
class BundleReport:
    """Everything verify found: files first (they are checked first), then each chain."""

    files: tuple[FileCheck, ...]
    chains: tuple[ChainReport, ...]
    problems: tuple[str, ...] = ()  # chains that could not be read at all

    @property
    def ok(self) -> bool:
        """True when every file and every chain verified."""
        return (
            not self.problems and all(f.ok for f in self.files) and all(c.ok for c in self.chains)
        )

    def first_problem(self) -> str | None:
        """The first thing wrong, in the order verify checks: files, then chains."""
        for check in self.files:
            if check.problem is not None:
                return f"{check.name}: {check.problem}"
        if self.problems:
            return self.problems[0]
        for chain in self.chains:
            if chain.problem is not None:
                where = f"seq {chain.problem.seq}" if chain.problem.seq is not None else "?"
                return f"{chain.name}: {chain.problem.kind} at {where}: {chain.problem.detail}"
        return None
