"""Which items of a submission lie outside a per-site submitter's site (pure).

A submitter of site S may send facts only about S's participants: a `participant_enrolled`
at S, or any fact for a participant enrolled at S, in the log or earlier in the same batch.
A participant enrolled nowhere yet is nobody's, so only an enrolment may introduce them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas import ArrivingFact, ParticipantEnrolled
from services.ingest.core.errors import FieldError


def participants(facts: Sequence[ArrivingFact]) -> list[str]:
    """The participant codes a batch names, in first-seen order (for the enrolment lookup)."""
    return list(dict.fromkeys(fact.participant_id for fact in facts))


def out_of_site(
    facts: Sequence[tuple[int, ArrivingFact]],
    *,
    site: str,
    enrolled: Mapping[str, frozenset[str]],
) -> tuple[tuple[int, FieldError], ...]:
    """Each (index, reason) of a fact the submitter of `site` may not send.

    Args:
        facts: the batch's valid facts with their positions in the request.
        site: the submitter's site.
        enrolled: the sites each participant is enrolled at according to the log.

    """
    in_batch: set[str] = set()
    found: list[tuple[int, FieldError]] = []
    for index, fact in facts:
        where = enrolled.get(fact.participant_id, frozenset())
        if fact.site_id != site:
            found.append((index, FieldError("site_id", f"is not this token's site {site!r}")))
        elif where - {site} or (
            site not in where
            and fact.participant_id not in in_batch
            and not isinstance(fact, ParticipantEnrolled)
        ):
            # One wording for "enrolled elsewhere" and "not enrolled": a submitter learns
            # nothing about other sites' participants from the answer.
            reason = f"is not a participant enrolled at site {site!r}"
            found.append((index, FieldError("participant_id", reason)))
        elif isinstance(fact, ParticipantEnrolled):
            in_batch.add(fact.participant_id)
    return tuple(found)
