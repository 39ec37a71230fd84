"""Routing: who hears about which signal (RULES.md §0.3; investigators see their own site only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import Role, Urgency
from services.notify.core.errors import RoutingFileError
from services.notify.core.routing import parse_routing, recipients_for
from tests.unit.notify.factories import (
    DSMB_CHAIR,
    ROUTING_TOML,
    S01_INVESTIGATORS,
    S02_INVESTIGATORS,
    SAFETY_OFFICER,
    make_routing,
    make_signal,
)

DEMO_ROUTING = Path(__file__).resolve().parents[3] / "tools" / "demo" / "routing.toml"


def addresses(signal, routing=None) -> set[str]:
    return {r.address for r in recipients_for(signal, routing or make_routing())}


def test_investigator_of_s01_never_gets_an_s02_signal() -> None:
    """Investigators receive their own site's signals only."""
    got = addresses(make_signal(site_id="S02"))

    assert got == S02_INVESTIGATORS | {SAFETY_OFFICER}
    assert not got & S01_INVESTIGATORS


def test_s01_signal_goes_to_s01_investigators_and_safety_officer() -> None:
    """Both S01 investigators (PI and on-call) and the safety officer hear about an S01 SAE."""
    got = recipients_for(make_signal(site_id="S01"), make_routing())

    assert {(r.role, r.address) for r in got} == {
        (Role.INVESTIGATOR, "pi.s01@site1.example"),
        (Role.INVESTIGATOR, "oncall.s01@site1.example"),
        (Role.SAFETY_OFFICER, SAFETY_OFFICER),
    }
    assert all(r.gaps == () for r in got)


def test_urgency_filter_skips_roles_that_do_not_accept_the_urgency() -> None:
    """A U2 signal is not emailed to investigators, who accept U0 and U1 only."""
    got = addresses(make_signal(urgency=Urgency.U2))

    assert got == {SAFETY_OFFICER}


def test_urgency_filter_can_leave_nobody() -> None:
    """A U3 signal for roles that do not take U3 is deliberately not emailed."""
    signal = make_signal(urgency=Urgency.U3, recipients=(Role.INVESTIGATOR, Role.DSMB_CHAIR))

    assert addresses(signal) == set()


def test_site_without_investigator_entry_falls_back_to_safety_officer_with_note() -> None:
    """A signal from a site missing in the routing file is not dropped."""
    got = recipients_for(
        make_signal(site_id="S03", recipients=(Role.INVESTIGATOR,)), make_routing()
    )

    assert [(r.role, r.address) for r in got] == [(Role.SAFETY_OFFICER, SAFETY_OFFICER)]
    assert [gap.reason for gap in got[0].gaps] == ["no_site_entry"]
    assert "site S03" in got[0].gaps[0].note()


def test_role_with_no_addresses_falls_back_to_safety_officer() -> None:
    """The backup role has an entry without addresses: its share goes to the safety officer."""
    got = recipients_for(make_signal(recipients=(Role.BACKUP,)), make_routing())

    assert [r.address for r in got] == [SAFETY_OFFICER]
    assert [gap.reason for gap in got[0].gaps] == ["no_addresses"]


def test_role_missing_from_file_falls_back_to_safety_officer() -> None:
    """The DSMB role is not configured at all: the safety officer is told instead."""
    got = recipients_for(make_signal(recipients=(Role.DSMB, Role.DSMB_CHAIR)), make_routing())

    assert {r.address for r in got} == {DSMB_CHAIR, SAFETY_OFFICER}
    officer = next(r for r in got if r.address == SAFETY_OFFICER)
    assert [gap.reason for gap in officer.gaps] == ["role_not_configured"]


def test_fallback_merges_into_safety_officer_already_receiving() -> None:
    """The safety officer gets one message that carries the note, not two."""
    signal = make_signal(site_id="S03")

    got = recipients_for(signal, make_routing())

    assert [(r.role, r.address) for r in got] == [(Role.SAFETY_OFFICER, SAFETY_OFFICER)]
    assert len(got[0].gaps) == 1


def test_one_message_per_address_even_in_two_roles() -> None:
    """An address listed under two roles receives the signal once."""
    text = ROUTING_TOML.replace('["dsmb.chair@trial.example"]', f'["{SAFETY_OFFICER.upper()}"]')

    got = recipients_for(
        make_signal(recipients=(Role.SAFETY_OFFICER, Role.DSMB_CHAIR)), make_routing(text)
    )

    assert [(r.role, r.address) for r in got] == [(Role.SAFETY_OFFICER, SAFETY_OFFICER)]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (
            ('["safety.officer@trial.example"]', '["not an address"]'),
            "roles.safety_officer.addresses.0",
        ),
        (('"U0", "U1", "U2"', '"U9"'), "roles.safety_officer.urgencies.0"),
        (("[roles.dsmb_chair]", "[roles.dsmb_chiar]"), "roles.dsmb_chiar"),
        (("version = 1", "version = 2"), "version"),
        (("[sites.S01.investigator]", "[sites.S01.investigators]"), "sites.S01.investigators"),
        (('["safety.officer@trial.example"]', "[]"), "roles.safety_officer.addresses"),
        (("[roles.dsmb_chair]", "[roles.investigator]"), "roles.investigator"),
        (
            ('["pi.s02@site2.example"]', '["pi\\r\\nBcc: x@evil.example"]'),
            "sites.S02.investigator.addresses.0",
        ),
    ],
)
def test_bad_routing_file_is_an_error_naming_the_key(change: tuple[str, str], key: str) -> None:
    """A startup error must tell the operator which key to fix."""
    text = ROUTING_TOML.replace(*change)

    with pytest.raises(RoutingFileError, match=key.replace(".", r"\.")):
        parse_routing(text, source="routing.toml")


def test_bad_toml_is_an_error() -> None:
    with pytest.raises(RoutingFileError, match="not valid TOML"):
        parse_routing("version = = 1")


def test_demo_routing_file_routes_each_site_to_its_own_investigators() -> None:
    """The shipped demo file is valid and covers S01-S03."""
    routing = parse_routing(DEMO_ROUTING.read_text(encoding="utf-8"))

    for site in ("S01", "S02", "S03"):
        got = addresses(make_signal(site_id=site, recipients=(Role.INVESTIGATOR,)), routing)
        assert got
        assert all(address.endswith(f"@site{site[-1]}.example.org") for address in got)


def test_a_role_can_be_limited_to_rule_categories() -> None:
    """E.g. the DSMB chair is emailed about deaths and SUSARs only, not every SAE."""
    text = ROUTING_TOML.replace(
        '[roles.dsmb_chair]\naddresses = ["dsmb.chair@trial.example"]\nurgencies = ["U0"]',
        '[roles.dsmb_chair]\naddresses = ["dsmb.chair@trial.example"]\nurgencies = ["U0"]\n'
        'categories = ["death", "susar"]',
    )
    routing = make_routing(text)
    roles = (Role.DSMB_CHAIR, Role.SAFETY_OFFICER)

    death = recipients_for(make_signal(category="death", recipients=roles), routing)
    sae = recipients_for(make_signal(category="sae", recipients=roles), routing)

    assert DSMB_CHAIR in {r.address for r in death}
    assert DSMB_CHAIR not in {r.address for r in sae}
    assert all(not r.gaps for r in sae)  # skipped on purpose, not a routing gap
