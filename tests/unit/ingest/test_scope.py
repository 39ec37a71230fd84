"""Per-site submitters: which items of a batch lie outside the token's site (pure core)."""

from datetime import UTC, datetime

import pytest

from services.ingest.core.accept import Accepted, accept
from services.ingest.core.scope import out_of_site, participants
from tests.factories import enrolment, lab

S01, S02 = frozenset({"S01"}), frozenset({"S02"})


def _facts(*items: dict) -> list:
    results = [accept(i, recorded_at=datetime.now(UTC), actor="token:t") for i in items]
    assert all(isinstance(r, Accepted) for r in results)
    return [(index, r.fact) for index, r in enumerate(results)]


def _reasons(problems) -> list[tuple[int, str]]:
    return [(index, error.field) for index, error in problems]


def test_own_participants_enrolled_in_the_log_are_in_scope():
    """A site's submitter may send facts about its enrolled participants."""
    facts = _facts(lab(participant_id="P1", site_id="S01"))

    assert out_of_site(facts, site="S01", enrolled={"P1": frozenset({"S01"})}) == ()


def test_an_enrolment_earlier_in_the_batch_brings_the_participant_in_scope():
    """Enrol-then-report in one request is accepted."""
    facts = _facts(
        enrolment(participant_id="P1", site_id="S01"), lab(participant_id="P1", site_id="S01")
    )

    assert out_of_site(facts, site="S01", enrolled={}) == ()


def test_a_fact_before_its_enrolment_in_the_batch_is_out_of_scope():
    """Order matters: a participant is the site's only from its enrolment on."""
    facts = _facts(
        lab(participant_id="P1", site_id="S01"), enrolment(participant_id="P1", site_id="S01")
    )

    assert _reasons(out_of_site(facts, site="S01", enrolled={})) == [(0, "participant_id")]


@pytest.mark.parametrize(
    ("item", "enrolled", "field"),
    [
        (lab(participant_id="P2", site_id="S02"), {"P2": frozenset({"S02"})}, "site_id"),
        (lab(participant_id="P2", site_id="S01"), {"P2": frozenset({"S02"})}, "participant_id"),
        (lab(participant_id="P9", site_id="S01"), {}, "participant_id"),
        (enrolment(participant_id="P2", site_id="S01"), {"P2": S02}, "participant_id"),
        (enrolment(participant_id="P3", site_id="S02"), {}, "site_id"),
        (lab(participant_id="P4", site_id="S01"), {"P4": S01 | S02}, "participant_id"),
    ],
    ids=[
        "other-site-fact",
        "other-site-participant-claimed-as-own",
        "participant-enrolled-nowhere",
        "re-enrolling-another-sites-participant",
        "enrolling-at-another-site",
        "participant-enrolled-at-two-sites",
    ],
)
def test_facts_outside_the_site_are_named_with_the_field(item, enrolled, field):
    """Another site's participant, or one nobody enrolled, is refused."""
    problems = out_of_site(_facts(item), site="S01", enrolled=enrolled)

    assert _reasons(problems) == [(0, field)]


def test_enrolled_elsewhere_and_enrolled_nowhere_read_the_same():
    """The answer does not tell a submitter which participants other sites have."""
    elsewhere = out_of_site(
        _facts(lab(participant_id="P2")), site="S01", enrolled={"P2": frozenset({"S02"})}
    )
    nowhere = out_of_site(_facts(lab(participant_id="P2")), site="S01", enrolled={})

    assert elsewhere == nowhere


def test_every_offending_item_is_listed_with_its_index():
    facts = _facts(
        lab(participant_id="P1", site_id="S01"),
        lab(participant_id="P2", site_id="S02"),
        lab(participant_id="P3", site_id="S01"),
    )

    problems = out_of_site(facts, site="S01", enrolled={"P1": frozenset({"S01"})})

    assert _reasons(problems) == [(1, "site_id"), (2, "participant_id")]


def test_participants_are_listed_once_in_first_seen_order():
    items = (lab(participant_id="B"), lab(participant_id="A"), lab(participant_id="B"))
    facts = [fact for _, fact in _facts(*items)]

    assert participants(facts) == ["B", "A"]
