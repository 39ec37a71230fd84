"""What a pure mapping function yields for one source record: a submission, or why not."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Mapped:
    """A source record turned into one `Submission`-shaped event dict.

    `tag` names what the record counts as in the import summary, e.g. `LB:ALT` or `DM:arm=A`.
    """

    record_id: str
    submission: dict[str, Any]
    tag: str


@dataclass(frozen=True, slots=True)
class Unmapped:
    """A source record that becomes no event, with the field and the reason.

    `rejected`: the record is wrong or cannot be read (the import exits non-zero).
    `skipped`: the record is well formed but safetymon has no contract for it (e.g. a
    lab test the trial does not monitor); it is listed in the reasons file, never dropped silently.
    """

    record_id: str
    field: str
    reason: str
    status: Literal["rejected", "skipped"] = "rejected"


Outcome = Mapped | Unmapped


class MappingError(ValueError):
    """A value in a source record that cannot be mapped; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def without_conflicts(outcomes: Iterable[Outcome]) -> Iterator[Outcome]:
    """Reject a record whose source_ref repeats an earlier one's with other content.

    An identical repeat passes through and ingest answers `duplicate`; a repeat that differs
    would otherwise be silently dropped by ingest's (source, source_ref) dedup.
    """
    # Deep dict equality, not canonical bytes: serialising every record cost more than mapping it.
    seen: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for outcome in outcomes:
        if isinstance(outcome, Mapped):
            sub = outcome.submission
            key = (str(sub["source"]), str(sub["source_ref"]))
            earlier = seen.setdefault(key, (outcome.record_id, sub))
            if earlier[1] != sub:
                reason = f"same key as {earlier[0]} but different content; fix the source"
                yield Unmapped(outcome.record_id, "source_ref", reason)
                continue
        yield outcome
